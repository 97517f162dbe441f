"""Word units, romanization and the pause snap: pure functions on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.aligners.base import snap_onsets_to_speech
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
