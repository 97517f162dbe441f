"""The aligner interface, its registry, and CTC segmentation over log-probabilities.

Input: float32 mono waveform, its sample rate, the text and its language (``en``/``zh``).
Output: :class:`Alignment` — per-word and per-character ``TimedSpan`` (utterance-local samples at
the input rate, half-open) and a confidence in [0, 1] (geometric mean of the aligned path's frame
probabilities). A word is a unit of :mod:`duplexloom.tts_adapters.text_units`: for Chinese every
CJK character is one word (and one character) unit.

A backend supplies frame log-probabilities over its labels (:meth:`CTCAligner.log_probs`); the
path search is ``ctc_segmentation`` with one blank state between words. A word starts at the frame
where its first label's state begins, plus the backend's calibrated ``start_offset_samples``; it
ends where the blank after it begins (never after the next word's start).

Reject codes: ``align_empty_audio``, ``align_silent_audio``, ``align_empty_text``,
``align_unrepresentable``, ``align_text_too_long`` (more label states than audio frames),
``align_failed`` (no path), ``align_low_confidence`` (below ``min_confidence`` when set).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from duplexloom.schemas import RejectError, TimedSpan
from duplexloom.tts_adapters.base import MissingDependencyError
from duplexloom.tts_adapters.resample import resample

from .romanize import UnitTokens, text_to_units

SILENCE_PEAK = 1e-4  # float full scale; below this the "audio" is digital silence


@dataclass(frozen=True)
class Alignment:
    """Word and character spans (utterance-local samples at ``sample_rate``) and a confidence."""

    words: tuple[TimedSpan, ...]
    chars: tuple[TimedSpan, ...]
    confidence: float
    sample_rate: int


class AlignerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min_confidence: float = 0.0
    device: str = "cpu"


class Aligner:
    """Base class. Subclasses set ``name``, ``config_model``, ``requires`` and implement
    :meth:`align`; CTC backends derive from :class:`CTCAligner` instead."""

    name: ClassVar[str] = ""
    config_model: ClassVar[type[AlignerConfig]] = AlignerConfig
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, config: AlignerConfig) -> None:
        self.config = config

    def align(self, audio: np.ndarray, sample_rate: int, text: str, lang: str) -> Alignment:
        raise NotImplementedError

    def align_batch(self, items: Sequence[tuple[np.ndarray, int, str, str]]) -> list[Alignment | RejectError]:
        """Align many (audio, sample_rate, text, lang) items; a bad item yields its RejectError in
        place (the Beam ModelHandler routes it) instead of failing the batch."""
        out: list[Alignment | RejectError] = []
        for audio, sr, text, lang in items:
            try:
                out.append(self.align(audio, sr, text, lang))
            except RejectError as e:
                out.append(e)
        return out


class CTCAligner(Aligner):
    """CTC acoustic model + ctc-segmentation. Subclasses set ``labels`` (index 0 = blank),
    ``model_rate``, ``frame_samples`` (at ``model_rate``) and implement :meth:`log_probs`."""

    labels: tuple[str, ...] = ()
    model_rate: int = 16_000
    frame_samples: int = 320
    # Calibrated shift (model-rate samples) from a word's first-label frame to its onset, keyed by
    # "lang", "lang:<first label>" and "lang:<first two labels>" (most specific key wins), and a
    # per-language linear correction on the first label's posteriors around that frame.
    start_offset_samples: dict[str, int] = {}  # noqa: RUF012 - replaced per instance, never mutated
    start_refine: dict[str, list[float]] = {}  # noqa: RUF012 - lang -> [bias, w_prev, w_at, w_next]

    def unit_onset_shift(self, lang: str, labels: list[str], lp: np.ndarray, frame: int) -> int:
        """Model-rate samples to add to ``frame * frame_samples`` to get the word onset."""
        return onset_shift(self.start_offset_samples, self.start_refine, lang, labels, lp, frame, self.labels)

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        """``[frames, len(labels)]`` log-probabilities for mono float32 audio at ``model_rate``."""
        raise NotImplementedError

    def align(self, audio: np.ndarray, sample_rate: int, text: str, lang: str) -> Alignment:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        if audio.size < self.frame_samples * sample_rate // self.model_rate:
            raise RejectError("align_empty_audio", f"{audio.size} samples")
        if not np.isfinite(audio).all() or float(np.abs(audio).max()) < SILENCE_PEAK:
            raise RejectError("align_silent_audio", "no signal above digital silence")
        units = text_to_units(text, lang, self.labels)
        if not units:
            raise RejectError("align_empty_text", f"no words in {text[:40]!r}")
        model_audio = resample(audio, sample_rate, self.model_rate)
        lp = self.log_probs(model_audio)
        frames = align_frames(lp, units, self.labels)
        shifts = [
            self.unit_onset_shift(lang, u.labels, lp, ls[0])
            for u, ls in zip(units, frames.label_starts, strict=True)
        ]
        al = spans_from_frames(
            frames,
            units,
            frame_samples=self.frame_samples,
            model_rate=self.model_rate,
            out_rate=sample_rate,
            n_samples=audio.size,
            unit_shifts=shifts,
            end_shift=int(self.start_offset_samples.get(lang, 0)),
        )
        if al.confidence < self.config.min_confidence:
            raise RejectError("align_low_confidence", f"{al.confidence:.3f} < {self.config.min_confidence}")
        return al


@dataclass(frozen=True)
class FramePath:
    """Result of the path search, in model frames: for each unit, the start frame of each of its
    labels, and the frame where the blank after the unit begins; per-frame path log-prob."""

    label_starts: list[list[int]]
    unit_ends: list[int]
    frame_logp: np.ndarray
    n_frames: int


def align_frames(lp: np.ndarray, units: list[UnitTokens], labels: Sequence[str]) -> FramePath:
    """Run ctc-segmentation of the units' labels over log-probabilities ``lp``."""
    import ctc_segmentation as cs

    index = {lab: i for i, lab in enumerate(labels)}
    token_list = [np.array([index[lab] for lab in u.labels], dtype=np.int64) for u in units]
    n_states = sum(len(t) for t in token_list) + len(token_list) + 1
    if n_states > lp.shape[0]:
        raise RejectError("align_text_too_long", f"{n_states} label states for {lp.shape[0]} audio frames")
    config = cs.CtcSegmentationParameters()
    config.char_list = list(labels)
    config.blank = 0
    config.index_duration = 1.0  # work in frames; seconds are applied by the caller
    gt, utt_begin = cs.prepare_token_list(config, token_list)
    try:
        timings, char_probs, _ = cs.ctc_segmentation(config, lp.astype(np.float32), gt)
    except (AssertionError, IndexError) as e:  # the library's ways of saying "no path"
        raise RejectError("align_failed", str(e)) from e
    starts: list[list[int]] = []
    ends: list[int] = []
    for k, toks in enumerate(token_list):
        first = utt_begin[k] + 1  # utt_begin points at the blank before the unit
        starts.append([int(round(timings[first + j])) for j in range(len(toks))])
        ends.append(int(round(timings[utt_begin[k + 1]])))
    return FramePath(starts, ends, np.asarray(char_probs, dtype=np.float64), lp.shape[0])


def spans_from_frames(
    path: FramePath,
    units: list[UnitTokens],
    *,
    frame_samples: int,
    model_rate: int,
    out_rate: int,
    n_samples: int,
    unit_shifts: list[int],
    end_shift: int = 0,
) -> Alignment:
    """Turn a frame path into word and character spans at ``out_rate``. ``unit_shifts`` move each
    word's (and its characters') start frame to the onset; ``end_shift`` moves word ends."""

    def to_out(frame: int, shift: int = 0) -> int:
        s = frame * frame_samples + shift  # model-rate samples
        s = (s * out_rate + model_rate // 2) // model_rate
        return int(min(max(s, 0), n_samples))

    word_starts = [to_out(ls[0], sh) for ls, sh in zip(path.label_starts, unit_shifts, strict=True)]
    word_ends = [to_out(e, end_shift) for e in path.unit_ends]
    words: list[TimedSpan] = []
    chars: list[TimedSpan] = []
    confs: list[float] = []
    for k, unit in enumerate(units):
        start = word_starts[k] if not words else max(word_starts[k], words[-1].end_samples)
        nxt = word_starts[k + 1] if k + 1 < len(units) else n_samples
        end = min(max(word_ends[k], start + 1), max(nxt, start + 1), n_samples)
        start = min(start, end)
        f0 = path.label_starts[k][0]
        f1 = max(path.unit_ends[k], f0 + 1)
        conf = float(np.exp(np.mean(path.frame_logp[f0:f1]))) if f1 > f0 else 0.0
        confs.append(conf)
        words.append(TimedSpan(text=unit.unit.text, start_samples=start, end_samples=end, confidence=conf))
        # Characters: each starts at its first label's frame; a character without labels (a hyphen)
        # is a zero-width span where the next one starts.
        label_pos = 0
        char_starts: list[int | None] = []
        for labs in unit.char_labels:
            if labs:
                char_starts.append(to_out(path.label_starts[k][label_pos], unit_shifts[k]))
                label_pos += len(labs)
            else:
                char_starts.append(None)
        resolved: list[int] = []
        nxt_known = end
        for cst in reversed(char_starts):
            nxt_known = nxt_known if cst is None else cst
            resolved.append(nxt_known)
        resolved.reverse()
        resolved[0] = start
        for j, ch in enumerate(unit.chars):
            c0 = min(max(resolved[j], start), end)
            c1 = end if j + 1 == len(unit.chars) else min(max(resolved[j + 1], c0), end)
            chars.append(TimedSpan(text=ch, start_samples=c0, end_samples=c1))
    confidence = float(np.exp(np.mean(np.log(np.maximum(confs, 1e-12))))) if confs else 0.0
    return Alignment(words=tuple(words), chars=tuple(chars), confidence=confidence, sample_rate=out_rate)


def onset_features(lp: np.ndarray, frame: int, label_index: int) -> np.ndarray:
    """Posterior of the word's first label just before, at and after its start frame."""
    idx = [min(max(frame + d, 0), lp.shape[0] - 1) for d in (-1, 0, 1)]
    return np.exp(lp[idx, label_index]).astype(np.float64)


def offset_key(offsets: dict[str, int], lang: str, labels: list[str]) -> str:
    for key in (f"{lang}:{''.join(labels[:2])}", f"{lang}:{labels[0]}", lang):
        if key in offsets:
            return key
    return lang


def onset_shift(
    offsets: dict[str, int],
    refine: dict[str, list[float]],
    lang: str,
    labels: list[str],
    lp: np.ndarray,
    frame: int,
    label_list: Sequence[str],
) -> int:
    shift = float(offsets.get(offset_key(offsets, lang, labels), 0))
    if lang in refine:
        b, *w = refine[lang]
        shift += b + float(np.dot(w, onset_features(lp, frame, list(label_list).index(labels[0]))))
    return int(round(shift))


_REGISTRY: dict[str, type[Aligner]] = {}


def register_aligner(name: str) -> Callable[[type[Aligner]], type[Aligner]]:
    def deco(cls: type[Aligner]) -> type[Aligner]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"aligner {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _register_builtins() -> None:
    # Imported lazily: the backend modules import this one (and torch).
    from . import mms_fa, tiny, wav2vec2_local  # noqa: F401


def get_aligner(name: str, **config: Any) -> Aligner:
    """Build the registered aligner ``name`` with ``config`` (validated by its config model)."""
    _register_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown aligner {name!r}; known: {sorted(_REGISTRY)}")
    cls = _REGISTRY[name]
    missing = [pip for mod, pip in cls.requires if importlib.util.find_spec(mod) is None]
    if missing:
        raise MissingDependencyError(f"aligner {name!r} needs: pip install {' '.join(missing)}")
    return cls(cls.config_model(**config))


def available_aligners() -> list[str]:
    _register_builtins()
    return sorted(_REGISTRY)
