"""Where a clip has sound: a frame-energy voice mask and word spans that cover their sound (SPEC 7).

A CTC aligner marks a word's end at its last label spike, which for a Chinese syllable with a long
final (久: spike at 2.235 s, voiced until 2.62 s) or an English word with an unvoiced ending can be
hundreds of milliseconds before its sound stops. Everything timed "at the end of a word" (user ASR,
``<response>``, ``<backchannel>``, the response gap) inherits that error, so the time-merge
extends every word's end to the end of its sound before placing anything:

- :func:`voiced_frames`: a boolean mask over ``FRAME_MS`` frames, voiced when the frame's RMS is
  within ``REL_DB`` of the clip's loudest frame and above ``FLOOR_DB`` (works for digital silence
  between words as well as for a neural voice's noise floor);
- :func:`cover_sound`: word ``i`` ends at the last voiced frame before word ``i+1`` starts (or the
  clip's end for the last word): later than a CTC end where its sound goes on, earlier where the
  aligner ran its span into a pause; a word starts at its first voiced frame when its span opens in
  silence, the first word where the clip's sound starts.

Input: float32 mono audio and its utterance on the clip's clock (:class:`~duplexloom.schemas.ClipUtterance`).
Output: the same clip utterance with word (and character) spans fitted to their sound.
No reject codes.
"""

from __future__ import annotations

import numpy as np

from duplexloom.schemas import ClipUtterance, TimedSpan

FRAME_MS = 10
REL_DB = 45.0  # voiced: within this many dB of the clip's loudest frame ...
FLOOR_DB = -60.0  # ... and above this absolute level (dBFS)


def frame_samples(sample_rate: int) -> int:
    return sample_rate * FRAME_MS // 1000


def voiced_frames(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Voiced mask over whole ``FRAME_MS`` frames (a partial last frame counts as a frame)."""
    fr = frame_samples(sample_rate)
    n = -(-audio.shape[0] // fr)
    if n == 0:
        return np.zeros(0, dtype=bool)
    padded = np.zeros(n * fr, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    frames = padded.reshape(n, fr).astype(np.float64)
    power = np.einsum("ij,ij->i", frames, frames) / fr
    db = 10.0 * np.log10(power + 1e-20)
    bar = max(float(db.max()) - REL_DB, FLOOR_DB)
    return db > bar


def _cover(spans: tuple[TimedSpan, ...], voiced: np.ndarray, fr: int, limit: int) -> tuple[TimedSpan, ...]:
    out = list(spans)
    onset = np.flatnonzero(voiced)
    if onset.size and out:
        # Whatever sounds before the first word is the first word's (a clip opens with silence).
        first = int(onset[0]) * fr
        if first < out[0].start_samples:
            out[0] = out[0].model_copy(update={"start_samples": first})
    for i, w in enumerate(out):
        nxt = out[i + 1].start_samples if i + 1 < len(out) else limit
        nxt = max(nxt, w.start_samples + 1)
        # whole frames from the word's start to the next start (a frame straddling the next start
        # holds the next word's onset, not this word's sound)
        lo = w.start_samples // fr
        hi = max(lo + 1, nxt // fr) if i + 1 < len(out) else -(-nxt // fr)
        idx = np.flatnonzero(voiced[lo:hi])
        if idx.size == 0:
            continue  # no sound of its own to measure: keep the aligner's span
        if i > 0 and idx[0] > 0:
            # a span that opens in silence (the aligner started it inside a pause) starts at its sound
            w = w.model_copy(update={"start_samples": (lo + int(idx[0])) * fr})
            out[i] = w
        end = (lo + int(idx[-1]) + 1) * fr
        if end >= nxt // fr * fr:  # sound runs into the next word (or the clip end): no gap
            end = nxt
        end = min(end, nxt)
        if end > w.start_samples and end != w.end_samples:
            out[i] = w.model_copy(update={"end_samples": end})
    return tuple(out)


def cover_sound(utt: ClipUtterance, audio: np.ndarray, sample_rate: int) -> ClipUtterance:
    """``utt`` (its clip's clock, ``audio`` its clip) with every word/character end moved to the end
    of its sound."""
    if not utt.words:
        return utt
    fr = frame_samples(sample_rate)
    voiced = voiced_frames(np.asarray(audio, dtype=np.float32), sample_rate)
    limit = int(audio.shape[0])
    return utt.model_copy(
        update={
            "words": _cover(utt.words, voiced, fr, limit),
            "chars": _cover(utt.chars, voiced, fr, limit) if utt.chars else utt.chars,
        }
    )
