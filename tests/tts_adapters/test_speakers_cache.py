"""Speaker library, seeded pair choice, resampling and the content-addressed cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from duplexloom.tts_adapters import CachedTTS, SynthesisCache, get_tts, load_library, resample
from duplexloom.tts_adapters.cache import audio_sha256
from duplexloom.tts_adapters.cache import load as cache_load
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
    assert len(list(tmp_path.rglob("*.wav"))) == 5


def test_lazy_hits_carry_a_path_length_and_hash_not_samples(tmp_path):
    lib = load_library()
    counting = _Counting(get_tts("espeak"))
    cache = SynthesisCache(tmp_path)
    fresh = CachedTTS(counting, cache).synthesize_lazy(["good morning"], lib.users[2], "en")[0]
    assert fresh.audio is not None  # just synthesized: the samples are at hand anyway
    lazy = CachedTTS(counting, SynthesisCache(tmp_path)).synthesize_lazy(
        ["good morning"], lib.users[2], "en"
    )[0]
    assert counting.calls == 1
    assert lazy.audio is None and lazy.stored == fresh.stored and lazy.stored.path.endswith(".wav")
    assert lazy.stored.n_samples == lazy.duration_samples == fresh.audio.shape[0]
    loaded = cache_load(lazy)
    assert np.array_equal(loaded.audio, fresh.audio)
    assert lazy.audio_sha256 == fresh.audio_sha256 == audio_sha256(loaded.audio)
    eager = CachedTTS(counting, SynthesisCache(tmp_path)).synthesize(["good morning"], lib.users[2], "en")[0]
    assert np.array_equal(eager.audio, fresh.audio) and eager.word_starts_samples == fresh.word_starts_samples


def test_cache_entries_of_the_flac_version_are_synthesized_again(tmp_path):
    """An entry of 0.1's form (<key>.flac + a side file without length or hash) is a miss: it is
    synthesized once more (the migration was dropped, docs/DECISIONS.md) and stored in the current
    form, with the same samples."""
    lib = load_library()
    counting = _Counting(get_tts("espeak"))
    speaker = lib.users[2]
    new = CachedTTS(counting, SynthesisCache(tmp_path)).synthesize(["good morning"], speaker, "en")[0]
    wav = Path(new.stored.path)
    meta = wav.with_suffix(".json")
    sf.write(wav.with_suffix(".flac"), new.audio, new.sample_rate, format="FLAC", subtype="PCM_24")
    meta.write_text(
        json.dumps({"sample_rate": new.sample_rate, "word_starts_samples": new.word_starts_samples})
    )
    wav.unlink()
    cache = SynthesisCache(tmp_path)
    again = CachedTTS(counting, cache).synthesize(["good morning"], speaker, "en")[0]
    assert counting.calls == 2 and (cache.hits, cache.misses) == (0, 1)
    assert np.array_equal(again.audio, new.audio) and again.audio_sha256 == new.audio_sha256
    assert wav.exists() and "sha256" in json.loads(meta.read_text())


def test_cache_quantizes_like_the_flac_writer():
    """WAV entries hold the samples a FLAC PCM_24 entry held (libsndfile's WAV writer would round
    float input differently), so shards do not depend on which version filled the cache."""
    import io

    from duplexloom.tts_adapters.cache import quantize_24

    rng = np.random.default_rng(7)
    audio = (rng.standard_normal(50_000) * 0.5).astype(np.float32)
    audio[:4] = [1.5, -1.5, 0.5 / (1 << 23), -1.5 / (1 << 23)]  # clipping and round-half-to-even
    back = {}
    for fmt, data in (("FLAC", np.clip(audio, -1, 1)), ("WAV", quantize_24(audio))):
        buf = io.BytesIO()
        sf.write(buf, data, 16_000, format=fmt, subtype="PCM_24")
        buf.seek(0)
        back[fmt] = sf.read(buf, dtype="float32")[0]
    assert np.array_equal(back["FLAC"], back["WAV"])
    assert not np.array_equal(back["WAV"], audio)  # it does quantize


def test_own_wav_reader_equals_libsndfile(tmp_path):
    """The numpy reader of the cache's mono PCM_24 entries gives libsndfile's float32 values; any
    other WAV is left to libsndfile."""
    from duplexloom.tts_adapters.cache import _read_mono_pcm24_wav, quantize_24, read_audio

    rng = np.random.default_rng(3)
    audio = np.concatenate([[1.0, -1.0, 2.0**-23, -(2.0**-23), 0.0], rng.uniform(-1, 1, 4001)]).astype(
        np.float32
    )
    sf.write(tmp_path / "a.wav", quantize_24(audio), 16_000, subtype="PCM_24")
    ours, sr = read_audio(str(tmp_path / "a.wav"))
    ref, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 16_000 and ours.dtype == np.float32 and np.array_equal(ours, ref)
    sf.write(tmp_path / "b.wav", audio, 16_000, subtype="PCM_16")
    sf.write(tmp_path / "c.wav", np.stack([audio, audio], axis=1), 16_000, subtype="PCM_24")
    for name in ("b.wav", "c.wav"):
        assert _read_mono_pcm24_wav(str(tmp_path / name)) is None
    assert np.array_equal(
        read_audio(str(tmp_path / "b.wav"))[0], sf.read(tmp_path / "b.wav", dtype="float32")[0]
    )
