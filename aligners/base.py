"""The aligner interface, its registry, and CTC segmentation over log-probabilities.

Input: float32 mono waveform, its sample rate, the text and its language (``en``/``zh``).
Output: :class:`Alignment` — per-word and per-character ``TimedSpan`` (utterance-local samples at
the input rate, half-open), a confidence in [0, 1] (geometric mean of the aligned path's frame
probabilities) and how the word spans cover the speech (:class:`.energy.Coverage`, what the align
stage's quality guard scores). A word is a unit of :mod:`duplexloom.tts_adapters.text_units`: for Chinese every
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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from duplexloom.schemas import RejectError, TimedSpan
from duplexloom.tts_adapters.base import MissingDependencyError
from duplexloom.tts_adapters.resample import resample

from .energy import Coverage, coverage, first_onset, snap_ends_to_speech, speech_mask
from .romanize import UnitTokens, text_to_units

SILENCE_PEAK = 1e-4  # float full scale; below this the "audio" is digital silence


@dataclass(frozen=True)
class Alignment:
    """Word and character spans (utterance-local samples at ``sample_rate``) and a confidence."""

    words: tuple[TimedSpan, ...]
    chars: tuple[TimedSpan, ...]
    confidence: float
    sample_rate: int
    coverage: Coverage | None = None


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
    model_rate: int,
    out_rate: int,
    n_samples: int,
    label_pos: list[list[float]],
    end_pos: list[float],
) -> Alignment:
    """Word and character spans at ``out_rate`` from the onset of every label (``label_pos``) and
    the end of every word (``end_pos``), both in model-rate samples; ``path`` gives confidences."""

    def to_out(pos: float) -> int:
        return int(min(max(round(pos * out_rate / model_rate), 0), n_samples))

    word_starts = [to_out(row[0]) for row in label_pos]
    word_ends = [to_out(e) for e in end_pos]
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
        label_i = 0
        char_starts: list[int | None] = []
        for labs in unit.char_labels:
            if labs:
                char_starts.append(to_out(label_pos[k][label_i]))
                label_i += len(labs)
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


SNAP_HOP_MS = 5
SNAP_MIN_PAUSE_MS = 80  # shorter silences are stop closures inside speech, not pauses
SNAP_MAX_BACK_MS = 400
SNAP_REL_DB = -40.0
SNAP_LEAD_MS = 10  # word onsets sit a little before the energy rise (stop closures, soft attacks)
SNAP_MIN_SHIFT_MS = 40  # smaller corrections are left to the calibration


def snap_onsets_to_speech(label_pos: list[list[float]], audio: np.ndarray, rate: int) -> None:
    """A word whose first label fires well after a pause starts where the pause ends: CTC spikes of
    vowel-initial words often come late. Pause = a run of
    5 ms frames at least 40 dB below the loud frames, >= 80 ms long. Edits ``label_pos`` (model-rate
    samples) in place, keeping word onsets ordered."""
    hop = rate * SNAP_HOP_MS // 1000
    n = audio.size // hop
    if n < 2:
        return
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)) + 1e-10
    db = 20 * np.log10(rms)
    silent = db < np.percentile(db, 95) + SNAP_REL_DB
    runs: list[tuple[int, int]] = []  # pauses as [start, end) frames
    i = 0
    while i < n:
        if not silent[i]:
            i += 1
            continue
        j = i
        while j < n and silent[j]:
            j += 1
        if (j - i) * SNAP_HOP_MS >= SNAP_MIN_PAUSE_MS or i == 0:
            runs.append((i, j))
        i = j
    max_back = SNAP_MAX_BACK_MS // SNAP_HOP_MS
    lead = rate * SNAP_LEAD_MS // 1000
    min_shift = rate * SNAP_MIN_SHIFT_MS // 1000
    prev_onset_frame = -1
    for row in label_pos:
        f = int(min(max(row[0] // hop, 0), n - 1))
        # Only a pause that lies wholly after the previous word's onset and ends before this
        # word's first label can hold this word's true onset.
        cands = [e for st, e in runs if st > prev_onset_frame and f - max_back <= e <= f]
        if cands:
            cand = cands[-1] * hop - lead
            if row[0] - cand >= min_shift:
                shift = cand - row[0]
                row[:] = [p + shift if k == 0 else max(p, cand) for k, p in enumerate(row)]
        prev_onset_frame = int(row[0] // hop)


def head_onsets(
    prob: np.ndarray,
    first_frames: Sequence[int],
    frame_samples: int,
    *,
    back_frames: int,
    min_prob: float,
    offset_samples: float,
) -> list[float | None]:
    """Word onsets (model-rate samples) from the onset head's per-frame probabilities ``prob``.

    Word ``k``'s onset is the most probable frame from ``back_frames`` before its first-label
    frame up to one after it, later than the previous word's chosen frame and first-label frame
    (a word cannot start before the one it follows). The peak is refined below a frame with a
    parabola through the log-probabilities of it and its neighbors (the head was trained on
    Gaussian bumps, whose log is a parabola), then shifted by ``offset_samples``. None where the
    window's peak is below ``min_prob``: the caller keeps its own estimate."""
    n = prob.shape[0]
    logp = np.log(np.maximum(prob.astype(np.float64), 1e-9))
    out: list[float | None] = []
    prev = -1
    for k, f in enumerate(first_frames):
        lo = max(f - back_frames, prev + 1, first_frames[k - 1] + 1 if k else 0)
        hi = min(f + 1, n - 1)
        if lo > hi:
            out.append(None)
            continue
        t = lo + int(np.argmax(prob[lo : hi + 1]))
        if prob[t] < min_prob:
            out.append(None)
            continue
        delta = 0.0
        if 0 < t < n - 1:
            a, b, c = logp[t - 1], logp[t], logp[t + 1]
            curv = a - 2 * b + c
            if curv < 0:
                delta = float(np.clip(0.5 * (a - c) / curv, -0.5, 0.5))
        out.append((t + delta) * frame_samples + offset_samples)
        prev = t
    return out


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
