"""CTC path search and span building: ctc-segmentation over a model's frame log-probabilities,
then word and character spans from the refined label onsets and word ends.

Input: ``[frames, labels]`` log-probabilities, the text's :class:`.romanize.UnitTokens` and the
model's labels (index 0 = blank). Output: :class:`FramePath` (frames), then :class:`.Alignment`
(samples at the caller's rate). The path has one blank state between words.
Reject codes: ``align_text_too_long`` (more label states than audio frames), ``align_failed``
(no path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ctc_segmentation as cs
import numpy as np

from duplexloom.schemas import RejectError, TimedSpan

from .alignment import Alignment
from .romanize import UnitTokens


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
