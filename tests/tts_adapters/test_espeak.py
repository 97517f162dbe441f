"""espeak backend: real libespeak-ng audio, native word times, both languages."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.schemas import RejectError
from duplexloom.tts_adapters import get_tts, load_library
from duplexloom.tts_adapters.text_units import word_units


@pytest.fixture(scope="module")
def tts():
    return get_tts("espeak", sample_rate=16_000)


@pytest.fixture(scope="module")
def lib():
    return load_library()


def _energy_onset(audio: np.ndarray, sr: int) -> int:
    frame = sr // 100
    env = np.array([np.abs(audio[i : i + frame]).max() for i in range(0, len(audio), frame)])
    return int(np.argmax(env > 0.02)) * frame


@pytest.mark.parametrize(
    "text,lang",
    [("Hello there, my old friend. How are you today?", "en"), ("你好，世界。我们明天去北京吧！", "zh")],
)
def test_word_times_cover_every_unit_and_increase(tts, lib, text, lang):
    res = tts.synthesize([text], lib.assistants[0], lang)[0]
    assert res.sample_rate == 16_000
    assert res.audio.dtype == np.float32 and res.audio.ndim == 1
    assert 0.05 < np.abs(res.audio).max() <= 1.0
    words = res.word_starts_samples
    assert [w for w, _ in words] == [u.text for u in word_units(text, lang)]
    starts = [t for _, t in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[-1] < len(res.audio)
    # The first word starts where sound starts (within 30 ms).
    assert abs(starts[0] - _energy_onset(res.audio, 16_000)) < 480


def test_sample_rate_changes_duration_not_time(lib):
    a = get_tts("espeak", sample_rate=16_000).synthesize(["one two three four"], lib.users[0], "en")[0]
    b = get_tts("espeak", sample_rate=24_000).synthesize(["one two three four"], lib.users[0], "en")[0]
    assert b.sample_rate == 24_000
    assert abs(len(b.audio) / 24_000 - len(a.audio) / 16_000) < 0.01
    for (_, ta), (_, tb) in zip(a.word_starts_samples, b.word_starts_samples, strict=True):
        assert abs(ta / 16_000 - tb / 24_000) < 0.002


def test_speakers_sound_different(tts, lib):
    text = "The quick brown fox jumps over the lazy dog."
    a = tts.synthesize([text], lib.users[0], "en")[0].audio
    b = tts.synthesize([text], lib.users[1], "en")[0].audio
    n = min(len(a), len(b))
    assert len(a) != len(b) or not np.allclose(a[:n], b[:n])


def test_batch_equals_single(tts, lib):
    # Not byte-equal in general: libespeak-ng carries flutter phase between calls (see espeak.py).
    texts = ["first sentence here", "第二句话"]
    batch = tts.synthesize(texts, lib.users[3], "zh")
    again = tts.synthesize(texts[1:], lib.users[3], "zh")
    assert abs(len(batch[1].audio) - len(again[0].audio)) < 0.01 * len(again[0].audio)
    assert [w for w, _ in batch[1].word_starts_samples] == [w for w, _ in again[0].word_starts_samples]
    for (_, a), (_, b) in zip(batch[1].word_starts_samples, again[0].word_starts_samples, strict=True):
        assert abs(a - b) < 80  # 5 ms


def test_rejects(tts, lib):
    with pytest.raises(RejectError) as e:
        tts.synthesize(["  ,.!  "], lib.users[0], "en")
    assert e.value.code == "tts_empty_text"
    with pytest.raises(RejectError) as e:
        tts.synthesize(["bonjour"], lib.users[0], "fr")
    assert e.value.code == "tts_unsupported_lang"


def test_unknown_backend_lists_known():
    with pytest.raises(KeyError, match="espeak"):
        get_tts("nope")
