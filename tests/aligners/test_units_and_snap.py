"""Word units, romanization and the pause snap: pure functions on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.aligners.base import head_onsets, snap_onsets_to_speech
from duplexloom.aligners.romanize import text_to_units
from duplexloom.aligners.tiny_model import LABELS
from duplexloom.schemas import RejectError
from duplexloom.tts_adapters.text_units import word_units

SR = 16_000


def test_word_units():
    assert [u.text for u in word_units("Don't stop, it's well-known!", "en")] == [
        "Don't",
        "stop",
        "it's",
        "well-known",
    ]
    zh = word_units("你好，GPS 导航。", "zh")
    assert [u.text for u in zh] == ["你", "好", "GPS", "导", "航"]
    assert all(
        zh_text == "你好，GPS 导航。"[u.start_char : u.end_char]
        for zh_text, u in zip([u.text for u in zh], zh, strict=True)
    )


def test_romanization():
    units = text_to_units("绿色的车", "zh", LABELS)
    assert [u.labels for u in units] == [list("lv"), list("se"), list("de"), list("che")]
    assert text_to_units("Café", "en", LABELS)[0].labels == list("cafe")
    with pytest.raises(RejectError) as e:
        text_to_units("room 101", "en", LABELS)
    assert e.value.code == "align_unrepresentable"


def _tone(sec):
    t = np.arange(int(sec * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def test_snap_moves_a_late_onset_to_the_pause_end():
    audio = np.concatenate([_tone(0.5), np.zeros(int(0.3 * SR), np.float32), _tone(0.5)])
    speech_resumes = int(0.8 * SR)
    late = speech_resumes + int(0.12 * SR)
    pos = [[0.0, 800.0], [float(late), float(late + 500)]]
    snap_onsets_to_speech(pos, audio, SR)
    assert pos[0] == [0.0, 800.0]
    assert abs(pos[1][0] - (speech_resumes - 0.01 * SR)) <= 0.006 * SR
    assert pos[1][1] == late + 500  # later labels stay where they were


def test_snap_leaves_close_onsets_and_linked_words():
    audio = np.concatenate([_tone(0.5), np.zeros(int(0.3 * SR), np.float32), _tone(0.5)])
    close = int(0.8 * SR) + int(0.02 * SR)
    pos = [[0.0], [float(close)], [float(int(1.1 * SR))]]
    snap_onsets_to_speech(pos, audio, SR)
    assert pos == [[0.0], [float(close)], [float(int(1.1 * SR))]]


def _bumps(n_frames, onsets, sigma=192.0, frame=320):
    centers = np.arange(n_frames) * frame
    p = np.zeros(n_frames)
    for o in onsets:
        p = np.maximum(p, np.exp(-0.5 * ((centers - o) / sigma) ** 2))
    return 0.9 * p + 0.01


def test_head_onsets_find_sub_frame_peaks_in_the_window():
    true = [1000.0, 4100.0]  # samples; frames are 320 samples
    prob = _bumps(30, true)
    first_frames = [5, 16]  # CTC spikes come after the onsets (the second one 3 frames late)
    got = head_onsets(prob, first_frames, 320, back_frames=6, min_prob=0.2, offset_samples=0.0)
    assert got[0] is not None and got[1] is not None
    assert abs(got[0] - true[0]) < 40 and abs(got[1] - true[1]) < 40
    # The frame estimate alone would be off by up to half a frame; the parabola does better.
    assert abs(got[1] - true[1]) < abs(round(true[1] / 320) * 320 - true[1])
    shifted = head_onsets(prob, first_frames, 320, back_frames=6, min_prob=0.2, offset_samples=-50.0)
    assert shifted[0] == got[0] - 50


def test_head_onsets_leave_weak_or_out_of_window_peaks_to_the_caller():
    prob = _bumps(30, [1000.0])
    # The only bump lies more than back_frames before the second word's spike, and the first
    # word already took it: no onset for the second word.
    got = head_onsets(prob, [4, 20], 320, back_frames=5, min_prob=0.2, offset_samples=0.0)
    assert got[0] is not None and got[1] is None
    assert head_onsets(prob * 0.1, [4], 320, back_frames=5, min_prob=0.2, offset_samples=0.0) == [None]


def test_onset_targets_peak_at_native_word_starts():
    from duplexloom.aligners.train_tiny import Item, onset_targets

    with_times = Item(np.zeros(6400, np.float32), "a b", "en", [("a", 640), ("b", 3200)], [2, 3])
    without = Item(np.zeros(3200, np.float32), "c", "en", [], [4])
    y, mask = onset_targets([with_times, without], 25, 320)
    assert y.shape == mask.shape == (2, 25)
    assert [int(i) for i in np.flatnonzero(y[0] > 0.5)] == [2, 10]
    assert mask[0, :21].all() and not mask[0, 21:].any()
    assert not mask[1].any()  # no native times: nothing to learn from
