"""Word-onset refinement after the CTC path search (word *ends* are :mod:`.energy`'s).

- :func:`onset_shift`: the backend's calibrated shift from a word's first-label frame to its
  onset (most specific of ``lang:<two labels>``, ``lang:<label>``, ``lang``), plus a per-language
  linear correction on the first label's posteriors around that frame;
- :func:`head_onsets`: onsets from a model's word-onset head (peak in a window before the first
  label, refined below a frame);
- :func:`snap_onsets_to_speech`: a word whose first label fires well after a pause starts where
  the pause ends.

All positions are model-rate samples. No reject codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
