"""The aligner interface and its registry; :class:`CTCAligner.align` composes the CTC steps.

The steps live in their own modules: :mod:`.ctc_path` (ctc-segmentation path search, span
building), :mod:`.onsets` (word-onset refinement), :mod:`.energy` (word ends, coverage),
:mod:`.alignment` (the output record). Their public names are re-exported here.

Input: float32 mono waveform, its sample rate, the text and its language (``en``/``zh``).
Output: :class:`Alignment` — per-word and per-character ``TimedSpan`` (utterance-local samples at
the input rate, half-open), a confidence in [0, 1] (geometric mean of the aligned path's frame
probabilities) and how the word spans cover the speech (:class:`.energy.Coverage`, what the align
stage's quality guard scores). A word is a unit of :mod:`duplexloom.schemas.text_units`: for Chinese every
CJK character is one word (and one character) unit.

A backend supplies frame log-probabilities over its labels (:meth:`CTCAligner.log_probs`); the
path search is ``ctc_segmentation`` with one blank state between words. A word starts at the frame
where its first label's state begins, plus the backend's calibrated ``start_offset_samples``; a
backend whose model has a word-onset head (``frame_outputs``) replaces that by the head's peak in a
window before the first label (:func:`head_onsets`). A word ends where its sound ends (SPEC
section 7): the end of the last speech frame reached from its last label without crossing a pause,
before the next word's start or the utterance end (:func:`.energy.snap_ends_to_speech`), never
where the last label spike or the blank after it falls; a span with no speech at all keeps the
CTC end (the blank after the word).

Reject codes: ``align_empty_audio``, ``align_silent_audio``, ``align_empty_text``,
``align_unrepresentable``, ``align_text_too_long`` (more label states than audio frames),
``align_failed`` (no path), ``align_low_confidence`` (below ``min_confidence`` when set).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from duplexloom.audio import resample
from duplexloom.schemas import RejectError
from duplexloom.schemas.reject import MissingDependencyError

# The path search, the span builder and the onset refiners live in their own modules; their
# names stay importable from here (``from duplexloom.aligners.base import align_frames``).
from .alignment import Alignment
from .ctc_path import FramePath, align_frames, spans_from_frames
from .energy import Coverage, coverage, first_onset, snap_ends_to_speech, speech_mask
from .onsets import (
    SNAP_HOP_MS,
    SNAP_LEAD_MS,
    SNAP_MAX_BACK_MS,
    SNAP_MIN_PAUSE_MS,
    SNAP_MIN_SHIFT_MS,
    SNAP_REL_DB,
    head_onsets,
    offset_key,
    onset_features,
    onset_shift,
    snap_onsets_to_speech,
)
from .romanize import UnitTokens, text_to_units

__all__ = [
    "SILENCE_PEAK",
    "SNAP_HOP_MS",
    "SNAP_LEAD_MS",
    "SNAP_MAX_BACK_MS",
    "SNAP_MIN_PAUSE_MS",
    "SNAP_MIN_SHIFT_MS",
    "SNAP_REL_DB",
    "SPAN_RULES",
    "Aligner",
    "AlignerConfig",
    "Alignment",
    "CTCAligner",
    "Coverage",
    "FramePath",
    "UnitTokens",
    "align_frames",
    "aligner_class",
    "available_aligners",
    "get_aligner",
    "head_onsets",
    "model_fingerprint",
    "offset_key",
    "onset_features",
    "onset_shift",
    "register_aligner",
    "snap_onsets_to_speech",
    "spans_from_frames",
]

SILENCE_PEAK = 1e-4  # float full scale; below this the "audio" is digital silence


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

    @classmethod
    def model_fingerprint(cls, config: AlignerConfig) -> str:
        """What identifies the model ``config`` loads, computed without loading it. Alignment
        caches key on it and a run's config digest includes it, so a model update never serves
        stale cached alignments or lets resume skip shards made with the old model."""
        return cls.name

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
    # Onset-head settings (backends whose model has one, see frame_outputs): how many frames
    # before a word's first-label frame its onset may lie, the least head probability that counts
    # as an onset, and the per-language shift (model-rate samples) from the head's peak to the onset.
    onset_head: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance, never mutated
    time_shifts: int = 1  # alignment passes at fractions of a frame (see align)
    snap_to_speech: bool = True  # move word onsets out of / to the end of pauses (see snap_onsets_to_speech)

    def unit_onset_shift(self, lang: str, labels: list[str], lp: np.ndarray, frame: int) -> int:
        """Model-rate samples to add to ``frame * frame_samples`` to get the word onset."""
        return onset_shift(self.start_offset_samples, self.start_refine, lang, labels, lp, frame, self.labels)

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        """``[frames, len(labels)]`` log-probabilities for mono float32 audio at ``model_rate``."""
        raise NotImplementedError

    def frame_outputs(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`log_probs` and, for a model with an onset head, the per-frame probability that a
        word starts at the frame's center (``[frames]``); None otherwise."""
        return self.log_probs(audio), None

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
        # Sub-frame resolution: align again with the audio delayed by a fraction of a frame and
        # average the onsets (each pass is calibrated on its own; the delay is subtracted).
        n_pass = max(1, int(self.time_shifts))
        end_shift = int(self.start_offset_samples.get(lang, 0))
        first_path: FramePath | None = None
        label_pos: list[list[float]] = []
        end_pos: list[float] = []
        for j in range(n_pass):
            pad = j * self.frame_samples // n_pass
            x = np.concatenate([np.zeros(pad, np.float32), model_audio]) if pad else model_audio
            lp, onset_prob = self.frame_outputs(x)
            path = align_frames(lp, units, self.labels)
            lpos = [
                [f * self.frame_samples + self.unit_onset_shift(lang, u.labels, lp, ls[0]) - pad for f in ls]
                for u, ls in zip(units, path.label_starts, strict=True)
            ]
            if onset_prob is not None and self.onset_head:
                heads = head_onsets(
                    onset_prob,
                    [ls[0] for ls in path.label_starts],
                    self.frame_samples,
                    back_frames=int(self.onset_head["back_frames"]),
                    min_prob=float(self.onset_head["min_prob"]),
                    offset_samples=float(self.onset_head["offset_samples"].get(lang, 0)),
                )
                for row, h in zip(lpos, heads, strict=True):
                    if h is not None:
                        row[:] = [h - pad if k == 0 else max(p, h - pad) for k, p in enumerate(row)]
            epos = [e * self.frame_samples + end_shift - pad for e in path.unit_ends]
            if first_path is None:
                first_path, label_pos, end_pos = path, lpos, epos
            else:
                label_pos = [
                    [a + b for a, b in zip(x0, x1, strict=True)]
                    for x0, x1 in zip(label_pos, lpos, strict=True)
                ]
                end_pos = [a + b for a, b in zip(end_pos, epos, strict=True)]
        assert first_path is not None
        label_pos = [[p / n_pass for p in row] for row in label_pos]
        end_pos = [p / n_pass for p in end_pos]
        if self.snap_to_speech:
            snap_onsets_to_speech(label_pos, model_audio, self.model_rate)
        # Every backend: the sound of the utterance before its first word's onset is that word's,
        # and a word ends where its sound ends, not at its last label spike.
        mask = speech_mask(model_audio, self.model_rate)
        onset = first_onset(label_pos[0][0], model_audio, self.model_rate, mask)
        label_pos[0] = [onset if k == 0 else max(p, onset) for k, p in enumerate(label_pos[0])]
        end_pos = snap_ends_to_speech(
            [row[0] for row in label_pos],
            [max(row) for row in label_pos],
            end_pos,
            model_audio,
            self.model_rate,
            mask,
        )
        al = spans_from_frames(
            first_path,
            units,
            model_rate=self.model_rate,
            out_rate=sample_rate,
            n_samples=audio.size,
            label_pos=label_pos,
            end_pos=end_pos,
        )
        if al.confidence < self.config.min_confidence:
            raise RejectError("align_low_confidence", f"{al.confidence:.3f} < {self.config.min_confidence}")
        cov = coverage(audio, sample_rate, [(w.start_samples, w.end_samples) for w in al.words])
        return dataclasses.replace(al, coverage=cov)


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
    # lazy: cycle aligners.base <-> its backends (they register here); plugin registry, loads on demand
    from . import mms_fa, tiny, wav2vec2_local  # noqa: F401


def aligner_class(name: str) -> type[Aligner]:
    """The registered aligner class ``name``; ``KeyError`` naming the known ones otherwise."""
    _register_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown aligner {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def get_aligner(name: str, **config: Any) -> Aligner:
    """Build the registered aligner ``name`` with ``config`` (validated by its config model)."""
    cls = aligner_class(name)
    missing = [pip for mod, pip in cls.requires if importlib.util.find_spec(mod) is None]
    if missing:
        raise MissingDependencyError(f"aligner {name!r} needs: pip install {' '.join(missing)}")
    return cls(cls.config_model(**config))


# How spans are made from a model's output (word ends at the end of the sound since revision 2):
# part of every fingerprint, so alignments cached or shards written under older rules are redone.
SPAN_RULES = 2


def model_fingerprint(name: str, **config: Any) -> str:
    """:meth:`Aligner.model_fingerprint` of the registered aligner ``name`` with ``config``, plus
    the span rules' revision (:data:`SPAN_RULES`)."""
    cls = aligner_class(name)
    return f"{cls.model_fingerprint(cls.config_model(**config))};spans={SPAN_RULES}"


def available_aligners() -> list[str]:
    _register_builtins()
    return sorted(_REGISTRY)
