"""Speaker library, seeded pair choice, resampling and the content-addressed cache."""

from __future__ import annotations

import json

import numpy as np

from duplexloom.tts_adapters import CachedTTS, SynthesisCache, get_tts, load_library, resample
from duplexloom.tts_adapters.speakers import EMBEDDED_PATH, build_embedded


def test_embedded_library_shape():
    lib = load_library()
    assert len(lib.assistants) == 18
    assert len(lib.users) >= 100
    names = [a.display_name for a in lib.assistants]
    assert all(names) and len(set(names)) == 18
    # Users are distinct voices: no two share all engine parameters.
    params = {json.dumps(u.engine_params, sort_keys=True) for u in lib.users}
    assert len(params) == len(lib.users)


def test_committed_manifest_is_generated_one():
    assert json.loads(EMBEDDED_PATH.read_text(encoding="utf-8")) == build_embedded()


def test_pick_pair_seeded_distinct_and_spread():
    lib = load_library()
    pairs = [lib.pick_pair(7, f"sess_{i}", "en") for i in range(200)]
    for user, asst in pairs:
        assert user.role == "user" and asst.role == "assistant"
        assert user.engine_params["variant"] != asst.engine_params["variant"]
    assert pairs[:5] == [lib.pick_pair(7, f"sess_{i}", "en") for i in range(5)]
    assert len({a.id for _, a in pairs}) >= 15
    assert len({u.id for u, _ in pairs}) >= 60
    assert [lib.pick_pair(8, f"sess_{i}", "en") for i in range(20)] != pairs[:20]


def test_resample_keeps_a_tone():
    sr_from, sr_to = 22_050, 16_000
    t = np.arange(sr_from) / sr_from
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, sr_from, sr_to)
    assert out.dtype == np.float32 and abs(len(out) - sr_to) <= 1
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * sr_to / len(out) - 440) < 2


class _Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def synthesize(self, texts, speaker, lang):
        self.calls += len(texts)
        return self.inner.synthesize(texts, speaker, lang)


def test_cache_synthesizes_each_utterance_once(tmp_path):
    lib = load_library()
    counting = _Counting(get_tts("espeak"))
    cached = CachedTTS(counting, SynthesisCache(tmp_path))
    first = cached.synthesize(["good morning", "see you later"], lib.users[2], "en")
    assert counting.calls == 2
    again = CachedTTS(counting, SynthesisCache(tmp_path)).synthesize(
        ["see you later", "good morning", "new one"], lib.users[2], "en"
    )
    assert counting.calls == 3
    assert again[1].word_starts_samples == first[0].word_starts_samples
    np.testing.assert_allclose(again[1].audio, first[0].audio, atol=1e-6)
    # Another speaker or another setting is another key.
    cached.synthesize(["good morning"], lib.users[3], "en")
    CachedTTS(counting, SynthesisCache(tmp_path)).synthesize(["good morning"], lib.users[2], "zh")
    assert counting.calls == 5
    assert len(list(tmp_path.rglob("*.flac"))) == 5
