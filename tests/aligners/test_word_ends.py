"""Word ends (SPEC section 7: a word ends where its sound ends) and speech coverage, on hand-made
audio: pauses, final words, long quiet finals, unvoiced endings, stop closures, breaths, noise."""

from __future__ import annotations

import numpy as np

from duplexloom.aligners.energy import coverage, first_onset, snap_ends_to_speech, speech_mask

SR = 16_000
MS = SR // 1000


def tone(sec: float, amp: float = 0.3, hz: float = 180.0) -> np.ndarray:
    t = np.arange(int(sec * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def hiss(sec: float, amp: float, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(sec * SR))).astype(np.float32)


def gap(sec: float) -> np.ndarray:
    return np.zeros(int(sec * SR), np.float32)


def at(sec: float) -> int:
    return int(sec * SR)


def test_ends_at_the_pause_and_at_the_final_words_sound_not_at_the_spike():
    # word A 0-0.5 s, pause, word B 0.8-1.3 s, trailing silence; CTC ends far too early.
    audio = np.concatenate([tone(0.5), gap(0.3), tone(0.5), gap(0.3)])
    ends = snap_ends_to_speech([0, at(0.8)], [at(0.2), at(1.0)], [at(0.25), at(0.9)], audio, SR)
    assert abs(ends[0] - at(0.5)) <= 5 * MS
    assert abs(ends[1] - at(1.3)) <= 5 * MS
    # A CTC end inside the trailing silence is pulled back to the sound's end too.
    late = snap_ends_to_speech([0], [at(0.4)], [at(0.7)], audio[: at(0.8)], SR)
    assert abs(late[0] - at(0.5)) <= 5 * MS


def test_long_quiet_final_and_unvoiced_endings_belong_to_the_word():
    # A Chinese syllable whose final fades to -30 dB for 350 ms ("久" voiced long after its
    # spike), then an English word ending in a fricative ("fish": -25 dB hiss), then one ending
    # in a stop closure + burst + /s/ ("stops"), each followed by a pause.
    jiu = np.concatenate([tone(0.15), tone(0.35, amp=0.3 * 10 ** (-30 / 20))])
    fish = np.concatenate([tone(0.2), hiss(0.12, 0.3 * 10 ** (-25 / 20))])
    stops = np.concatenate([tone(0.2), gap(0.06), hiss(0.02, 0.1, 1), hiss(0.1, 0.02, 2)])
    audio = np.concatenate([jiu, gap(0.4), fish, gap(0.4), stops, gap(0.3)])
    s1 = jiu.size + at(0.4)
    s2 = s1 + fish.size + at(0.4)
    starts = [0, s1, s2]
    anchors = [at(0.1), s1 + at(0.1), s2 + at(0.1)]
    ends = snap_ends_to_speech(starts, anchors, [a + 10 * MS for a in anchors], audio, SR)
    assert abs(ends[0] - jiu.size) <= 5 * MS
    assert abs(ends[1] - (s1 + fish.size)) <= 5 * MS
    assert abs(ends[2] - (s2 + stops.size)) <= 5 * MS  # the 60 ms closure is bridged


def test_connected_words_end_where_the_next_starts_and_a_breath_after_a_pause_is_not_the_word():
    audio = np.concatenate([tone(0.6), gap(0.4), hiss(0.05, 0.02), gap(0.3)])
    # Two words in one stretch of sound: the first ends at the second's start.
    ends = snap_ends_to_speech([0, at(0.3)], [at(0.1), at(0.4)], [at(0.15), at(0.45)], audio, SR)
    assert ends[0] == at(0.3)
    assert abs(ends[1] - at(0.6)) <= 5 * MS  # not the breath 400 ms later
    # A span with no sound at all keeps its CTC end.
    silent = snap_ends_to_speech([at(0.7), at(0.95)], [at(0.75), at(1.0)], [at(0.8), 0], audio, SR)
    assert silent[0] == float(at(0.8))
    assert abs(silent[1] - at(1.05)) <= 5 * MS  # the breath is all the last span has


def test_speech_long_after_the_last_label_is_not_the_words():
    # Text missing from the transcript: 2 s of speech after the last aligned word's label.
    audio = np.concatenate([tone(2.5), gap(0.2)])
    ends = snap_ends_to_speech([0], [at(0.3)], [at(0.4)], audio, SR)
    assert abs(ends[0] - at(1.2)) <= 5 * MS  # 800 ms after the CTC end, not 2.5 s
    assert coverage(audio, SR, [(0, int(ends[0]))]).speech_in_spans < 0.5


def test_a_noise_floor_is_not_speech():
    rng = np.random.default_rng(3)
    clean = np.concatenate([gap(0.2), tone(0.5), gap(0.5), tone(0.4), gap(0.4)])
    noisy = clean + (0.3 * 10 ** (-32 / 20) * rng.standard_normal(clean.size)).astype(np.float32)
    mask = speech_mask(noisy, SR)
    assert mask[at(0.3) // (5 * MS)] and not mask[at(0.95) // (5 * MS)]
    ends = snap_ends_to_speech([at(0.2), at(1.2)], [at(0.4), at(1.4)], [0, 0], noisy, SR)
    assert abs(ends[0] - at(0.7)) <= 10 * MS and abs(ends[1] - at(1.6)) <= 10 * MS


def test_coverage_scores():
    audio = np.concatenate([tone(0.5), gap(0.3), tone(0.5), gap(0.3)])
    full = coverage(audio, SR, [(0, at(0.5)), (at(0.8), at(1.3))])
    assert full.speech_in_spans > 0.99 and full.mostly_silent_words == 0 and full.words == 2
    # The second word placed in the pause: half the speech outside, one span mostly silence.
    bad = coverage(audio, SR, [(0, at(0.5)), (at(0.5), at(0.8))])
    assert 0.45 < bad.speech_in_spans < 0.55
    assert bad.mostly_silent_words == 1 and bad.mostly_silent_share == 0.5
    assert coverage(gap(0.5), SR, [(0, at(0.2))]).speech_in_spans == 1.0


def test_a_comma_pause_ends_the_word_even_when_the_next_onset_is_a_little_late():
    # "好的，已经": 的 then a 160 ms pause; 已's onset comes 10 ms after its sound starts.
    audio = np.concatenate([tone(0.3), gap(0.16), tone(0.4)])
    ends = snap_ends_to_speech([0, at(0.47)], [at(0.1), at(0.5)], [at(0.2), at(0.6)], audio, SR)
    assert abs(ends[0] - at(0.3)) <= 5 * MS


def test_first_onset_takes_the_sound_before_a_late_first_spike():
    speech_from_0 = np.concatenate([tone(0.6), gap(0.2)])
    assert first_onset(at(0.1), speech_from_0, SR) == 0.0  # "Okay": the o-spike 100 ms late
    lead_in = np.concatenate([gap(0.05), tone(0.5), gap(0.2)])
    assert abs(first_onset(at(0.15), lead_in, SR) - (at(0.05) - 10 * MS)) <= 5 * MS
    # A click 400 ms before the speech is not the word's; an onset already at the sound stays.
    click = np.concatenate([tone(0.02), gap(0.38), tone(0.5)])
    assert abs(first_onset(at(0.42), click, SR) - (at(0.4) - 10 * MS)) <= 5 * MS
    assert first_onset(at(0.395), click, SR) == at(0.395)
    # At most 800 ms back inside continuous sound.
    assert abs(first_onset(at(1.0), tone(1.5), SR) - at(0.2)) <= 15 * MS
