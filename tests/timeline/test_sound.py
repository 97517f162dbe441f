"""Word spans that cover their sound (SPEC 7): hand-made clips with known sound and CTC-like spans."""

from __future__ import annotations

import numpy as np

from duplexloom.schemas import ClipUtterance, TimedSpan
from duplexloom.timeline.sound import cover_sound, voiced_frames

SR = 16_000


def _tone(seconds: float, amp: float = 0.3, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def _utt(spans: list[tuple[str, float, float]], lang: str = "en") -> ClipUtterance:
    words = tuple(TimedSpan(text=w, start_samples=int(s * SR), end_samples=int(e * SR)) for w, s, e in spans)
    return ClipUtterance(
        id="u", speaker="user", lang=lang, text=" ".join(w for w, _, _ in spans), words=words
    )


def _ends(u: ClipUtterance) -> list[float]:
    return [round(w.end_samples / SR, 2) for w in u.words]


def test_a_long_final_keeps_its_span_until_its_sound_ends():
    # 久 with a long decaying final: the CTC spike ends the span at 0.30 s, the sound goes on to 0.80 s
    decay = _tone(0.6) * np.linspace(1.0, 0.05, int(0.6 * SR), dtype=np.float32)
    audio = np.concatenate([_silence(0.1), _tone(0.1), decay, _silence(0.3)])
    u = cover_sound(_utt([("久", 0.1, 0.30)], "zh"), audio, SR)
    assert _ends(u) == [0.8]


def test_an_unvoiced_ending_and_a_pause_between_words():
    # "stops" ends in a quiet fricative (-30 dB below the vowel), then a pause, then "fish"
    rng = np.random.default_rng(0)
    fricative = (0.01 * rng.standard_normal(int(0.15 * SR))).astype(np.float32)
    audio = np.concatenate([_silence(0.05), _tone(0.25), fricative, _silence(0.4), _tone(0.3), _silence(0.2)])
    # CTC-like spans: "stops" stops at the vowel's spike; "fish" spans only its first half
    u = cover_sound(_utt([("stops", 0.05, 0.2), ("fish", 0.85, 1.0)]), audio, SR)
    assert _ends(u) == [0.45, 1.15]  # the fricative belongs to "stops"; "fish" to its sound's end
    assert u.words[1].start_samples == int(0.85 * SR)  # starts are the aligner's


def test_a_span_that_runs_into_a_pause_is_cut_back_and_the_first_word_starts_with_its_sound():
    audio = np.concatenate([_silence(0.1), _tone(0.2), _silence(0.3), _tone(0.2), _silence(0.1)])
    # the aligner started "hello" late and ran it through the comma pause up to "there"
    u = cover_sound(_utt([("hello", 0.18, 0.6), ("there", 0.6, 0.7)]), audio, SR)
    assert u.words[0].start_samples == int(0.1 * SR)
    assert _ends(u) == [0.3, 0.8]


def test_connected_words_meet_and_silent_clips_stay_as_they_are():
    audio = np.concatenate([_silence(0.05), _tone(0.5), _silence(0.05)])
    u = cover_sound(_utt([("one", 0.05, 0.2), ("two", 0.3, 0.4)]), audio, SR)
    assert u.words[0].end_samples == u.words[1].start_samples == int(0.3 * SR)
    assert _ends(u)[1] == 0.55
    quiet = _utt([("x", 0.0, 0.1)])
    assert cover_sound(quiet, _silence(0.3), SR) == quiet
    assert not voiced_frames(_silence(0.3), SR).any()


def test_a_noise_floor_is_not_sound():
    rng = np.random.default_rng(1)
    floor = (1e-4 * rng.standard_normal(int(1.0 * SR))).astype(np.float32)  # -80 dBFS hiss
    audio = floor.copy()
    audio[int(0.2 * SR) : int(0.5 * SR)] += _tone(0.3)
    u = cover_sound(_utt([("hi", 0.25, 0.3)]), audio, SR)
    assert u.words[0].start_samples == int(0.2 * SR) and _ends(u) == [0.5]
