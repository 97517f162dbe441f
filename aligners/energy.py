"""Speech and silence from the waveform, for word ends and alignment quality.

Input: float32 mono audio and its rate. Output: a per-frame speech mask (5 ms frames), word ends
snapped to where a word's sound ends (SPEC section 7: the last non-silent frame before the next
word's start or the end of the utterance, never the last CTC label spike), and the coverage scores
the align stage guards on (share of speech energy inside word spans, words whose span is mostly
silence). Pure numpy; no reject codes.

"Silent" is relative to the utterance: a frame is speech when its RMS level is within
``REL_DB`` of the loud frames (95th percentile), and, when the audio has a noise floor, clearly
above it (so background noise at a moderate SNR is not "speech" everywhere); digital silence is
never speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOP_MS = 5
REL_DB = -40.0  # below the loud frames by more than this: silence
FLOOR_MARGIN_DB = 6.0  # speech must be this far above the noise floor ...
FLOOR_CAP_DB = -20.0  # ... but the threshold never rises above loud - 20 dB (very noisy audio)
# A silent stretch inside a word (a stop closure, ~30-80 ms) is bridged when looking for where the
# word's sound ends; one this long is a pause (espeak's comma pauses are ~150 ms) and separates the
# word from a later sound (the next word's first frames before its onset, a breath, a click).
END_MAX_GAP_MS = 100
# A word's sound outlasts its last CTC label by a long final at most (久: ~0.4 s); speech going on
# much longer than that is not this word's (text missing from the transcript, a misalignment): the
# word ends within this much of its CTC end and the speech after it stays outside every span, where
# the quality guard sees it.
END_MAX_OVERHANG_MS = 800
SILENCE_DB = -85.0  # absolute: quieter frames are digital silence (under ~2 LSB of 16-bit audio)
MOSTLY_SILENT = 0.5  # a word span with less than this share of speech frames is "mostly silence"


def frame_db(audio: np.ndarray, rate: int, hop_ms: int = HOP_MS) -> np.ndarray:
    """RMS level (dB re full scale) of consecutive ``hop_ms`` frames (a partial last frame counts)."""
    hop = max(1, rate * hop_ms // 1000)
    n = -(-audio.size // hop)
    x = np.zeros(n * hop, np.float64)
    x[: audio.size] = audio
    rms = np.sqrt(np.mean(x.reshape(n, hop) ** 2, axis=1)) + 1e-10
    return 20 * np.log10(rms)


def speech_threshold_db(db: np.ndarray) -> float:
    """The level above which a frame is speech (see the module docstring)."""
    loud = float(np.percentile(db, 95))
    floor = float(np.percentile(db, 5))
    return max(loud + REL_DB, min(floor + FLOOR_MARGIN_DB, loud + FLOOR_CAP_DB), SILENCE_DB)


def speech_mask(audio: np.ndarray, rate: int, hop_ms: int = HOP_MS) -> np.ndarray:
    """Per ``hop_ms`` frame: True where the audio is speech (non-silent)."""
    db = frame_db(audio, rate, hop_ms)
    return db > speech_threshold_db(db)


def snap_ends_to_speech(
    starts: Sequence[float],
    anchors: Sequence[float],
    fallback_ends: Sequence[float],
    audio: np.ndarray,
    rate: int,
    mask: np.ndarray | None = None,
) -> list[float]:
    """Word ends (samples at ``rate``) where each word's sound ends.

    Word ``k`` spans ``[starts[k], starts[k+1])`` at most (the last word: up to the audio's end).
    ``anchors[k]`` is a point inside the word's sound (its last CTC label's onset). Its end is the
    end of the last speech frame reached from the anchor without crossing a silence of
    ``END_MAX_GAP_MS`` or more, before the next word's start and at most ``END_MAX_OVERHANG_MS``
    after ``fallback_ends[k]`` (the CTC end) or the anchor; speech frames between the word's start and its
    anchor count too (a late anchor in the trailing silence of its word). A span without any
    speech keeps ``fallback_ends[k]`` (the quality guard flags it)."""
    hop = max(1, rate * HOP_MS // 1000)
    if mask is None:
        mask = speech_mask(audio, rate)
    n = mask.size
    max_gap = END_MAX_GAP_MS // HOP_MS
    ends: list[float] = []
    for k, start in enumerate(starts):
        limit = starts[k + 1] if k + 1 < len(starts) else audio.size
        f0 = int(min(max(start // hop, 0), n))
        limit = min(limit, max(fallback_ends[k], anchors[k]) + rate * END_MAX_OVERHANG_MS // 1000)
        f_lim = int(min(max(-(-limit // hop), f0), n))  # frames overlapping [start, limit)
        f_anchor = int(min(max(anchors[k] // hop, f0), f_lim))
        before = np.flatnonzero(mask[f0:f_anchor])
        last = f0 + int(before[-1]) if before.size else -1
        for f in np.flatnonzero(mask[f_anchor:f_lim]) + f_anchor:
            if last >= 0 and f - last - 1 >= max_gap:
                break
            last = int(f)
        if last < 0:
            ends.append(float(fallback_ends[k]))
            continue
        ends.append(float(min(max((last + 1) * hop, start), limit, audio.size)))
    return ends


START_LEAD_MS = 10  # as base.SNAP_LEAD_MS: an onset sits a little before the energy rise


def first_onset(start: float, audio: np.ndarray, rate: int, mask: np.ndarray | None = None) -> float:
    """Where the first word of an utterance starts: its CTC onset ``start`` (samples at ``rate``),
    or earlier where the utterance's sound begins before it, reached back from the onset without
    crossing a silence of ``END_MAX_GAP_MS`` or more and at most ``END_MAX_OVERHANG_MS`` back
    (vowel-initial words' first spikes come late, and nothing else can own that sound; a pause
    at the utterance's start is the pause-snap's business, see ``base.snap_onsets_to_speech``)."""
    hop = max(1, rate * HOP_MS // 1000)
    if mask is None:
        mask = speech_mask(audio, rate)
    f_start = int(min(max(start // hop, 0), mask.size))
    lo = max(0, f_start - END_MAX_OVERHANG_MS // HOP_MS)
    max_gap = END_MAX_GAP_MS // HOP_MS
    first = -1
    for f in range(f_start - 1, lo - 1, -1):
        if mask[f]:
            first = f
        elif (first if first >= 0 else f_start) - f >= max_gap:
            break
    if first < 0:
        return float(start)
    return float(max(0, min(start, first * hop - rate * START_LEAD_MS // 1000)))


@dataclass(frozen=True)
class Coverage:
    """How well word spans cover an utterance's speech.

    ``speech_in_spans``: share of the speech frames' energy that lies inside some word span (1.0
    when the audio has no speech frame); ``mostly_silent_words``: how many word spans have less
    than ``MOSTLY_SILENT`` of their frames speech; ``words``: the number of word spans."""

    speech_in_spans: float
    mostly_silent_words: int
    words: int

    @property
    def mostly_silent_share(self) -> float:
        return self.mostly_silent_words / self.words if self.words else 0.0


def coverage(audio: np.ndarray, rate: int, spans: Sequence[tuple[int, int]]) -> Coverage:
    """:class:`Coverage` of ``spans`` (``(start, end)`` samples at ``rate``, half-open)."""
    audio = np.asarray(audio, dtype=np.float32)
    hop = max(1, rate * HOP_MS // 1000)
    db = frame_db(audio, rate)
    mask = db > speech_threshold_db(db)
    energy = 10 ** (db / 10)  # mean power per frame
    inside = np.zeros(mask.size, bool)
    silent_words = 0
    for s, e in spans:
        f0, f1 = int(s // hop), int(-(-e // hop))
        f0, f1 = min(max(f0, 0), mask.size), min(max(f1, 0), mask.size)
        inside[f0:f1] = True
        if f1 <= f0 or mask[f0:f1].mean() < MOSTLY_SILENT:
            silent_words += 1
    total = float(energy[mask].sum())
    share = float(energy[mask & inside].sum()) / total if total > 0 else 1.0
    return Coverage(speech_in_spans=share, mostly_silent_words=silent_words, words=len(spans))
