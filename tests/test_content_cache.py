"""The one content-addressed cache base and its four caches: entries already on disk keep hitting.

Each cache is given an entry written by hand in the layout and under the key that earlier versions
used (``<dir>/<key[:2]>/<key><suffix>``, keys pinned to their hex digests), and must serve it
without recomputing; the base writes atomically and counts hits and misses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from duplexloom.annotators.cache import ResponseCache
from duplexloom.annotators.cache import cache_key as response_key
from duplexloom.content_cache import ContentCache
from duplexloom.pipelines.align import AlignmentCache, AlignScores, align_key
from duplexloom.pipelines.serialize import FlacCache
from duplexloom.schemas import Speaker
from duplexloom.schemas.clip import AudioRef
from duplexloom.tts_adapters.cache import SynthesisCache, audio_sha256, load, quantize_24
from duplexloom.tts_adapters.cache import cache_key as synthesis_key


def _entry(root: Path, key: str, suffix: str) -> Path:
    p = root / key[:2] / f"{key}{suffix}"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def test_base_layout_atomic_write_and_counters(tmp_path):
    cache = ContentCache(tmp_path / "c", ".bin")
    key = "ab" + "0" * 62
    assert cache.read(key) is None and cache.counted(cache.read(key)) is None
    path = cache.write(key, b"bytes")
    assert path == str(tmp_path / "c" / "ab" / f"{key}.bin")
    cache.write(key, lambda f: f.write(b"side"), ".json")
    assert cache.counted(cache.read(key)) == b"bytes" and cache.read(key, ".json") == b"side"
    assert (cache.hits, cache.misses) == (1, 1)
    assert sorted(p.name for p in (tmp_path / "c" / "ab").iterdir()) == [f"{key}.bin", f"{key}.json"]
    nowhere = ContentCache(None, ".bin")  # no directory: stores nothing, every read misses
    assert nowhere.write(key, b"x") is None and nowhere.read(key) is None


def test_response_cache_serves_an_existing_entry(tmp_path):
    key = response_key("m", "t", "0" * 64, [{"role": "user", "content": "你好"}], {"temperature": 0.0})
    assert key == "61255e4da885db43fbaf84a601d90cd44b0ac890dedb349278f735b5646ef2ce"
    _entry(tmp_path, key, ".json").write_text('{"content": "早上好"}', encoding="utf-8")
    cache = ResponseCache(str(tmp_path))
    assert cache.get(key) == "早上好" and cache.get("f" * 64) is None
    assert (cache.hits, cache.misses) == (1, 1)
    cache.put("f" * 64, "晚安")
    # the file form of earlier versions (json.dump, ensure_ascii=False)
    assert _entry(tmp_path, "f" * 64, ".json").read_bytes() == '{"content": "晚安"}'.encode()
    assert ResponseCache(str(tmp_path)).get("f" * 64) == "晚安"


def test_synthesis_cache_serves_an_existing_entry_and_misses_a_flac_one(tmp_path):
    speaker = Speaker(id="u1", role="user", display_name="U", engine_params={"variant": "m3"})
    key = synthesis_key("good morning", speaker, "en", {"engine": "espeak"})
    assert key == "98b02e7ad2040a09d0b2eaa8dd9ba14e1920189d5fb1010a9efcedef8f35c78d"
    audio = (0.4 * np.sin(np.arange(4000) / 5.0)).astype(np.float32)
    wav = _entry(tmp_path, key, ".wav")
    sf.write(wav, quantize_24(audio), 16_000, format="WAV", subtype="PCM_24")
    stored = sf.read(wav, dtype="float32")[0]
    meta = {"sample_rate": 16_000, "word_starts_samples": [["good", 0], ["morning", 1800]]}
    meta |= {"n_samples": 4000, "sha256": audio_sha256(stored)}
    _entry(tmp_path, key, ".json").write_text(json.dumps(meta), encoding="utf-8")
    cache = SynthesisCache(tmp_path)
    hit = cache.lookup(key)
    assert hit is not None and hit.stored == AudioRef(
        path=str(wav), sample_rate=hit.sample_rate, n_samples=4000
    )
    assert hit.word_starts_samples == [("good", 0), ("morning", 1800)]
    assert np.array_equal(load(hit).audio, stored) and (cache.hits, cache.misses) == (1, 0)
    # 0.1's FLAC form (side file without length or hash): a miss, synthesized once more
    old = "c" * 64
    sf.write(_entry(tmp_path, old, ".flac"), audio, 16_000, format="FLAC", subtype="PCM_24")
    _entry(tmp_path, old, ".json").write_text(
        json.dumps({"sample_rate": 16_000, "word_starts_samples": None}), encoding="utf-8"
    )
    assert cache.lookup(old) is None and (cache.hits, cache.misses) == (1, 1)


def test_alignment_cache_serves_an_existing_entry(tmp_path):
    key = align_key("1" * 64, 16_000, "good morning", "en", {"backend": "tiny"})
    assert key == "39807c97657718a865b8973bfec9d861c72c4c81b6f9b2a080dee6a7a8e14f6b"
    span = {"text": "good", "start_samples": 10, "end_samples": 900, "confidence": 0.5}
    entry = {"words": [span], "chars": [], "confidence": 0.7, "scores": [0.99, 0.0, 0.7]}
    _entry(tmp_path, key, ".json").write_text(json.dumps(entry), encoding="utf-8")
    cache = AlignmentCache(str(tmp_path))
    assert cache.get(key) == ((("good", 10, 900, 0.5),), (), 0.7, AlignScores(0.99, 0.0, 0.7))
    old = "d" * 64  # written before the quality guard (no scores): align again
    unscored = {k: v for k, v in entry.items() if k != "scores"}
    _entry(tmp_path, old, ".json").write_text(json.dumps(unscored), encoding="utf-8")
    assert cache.get(old) is None and (cache.hits, cache.misses) == (1, 1)


def test_flac_cache_serves_an_existing_entry(tmp_path):
    audio = (0.3 * np.cos(np.arange(8000) / 3.0)).astype(np.float32)
    cache = FlacCache(str(tmp_path))
    h = hashlib.sha256(audio.tobytes())
    h.update(f"|16000|PCM_16|{sf.__libsndfile_version__}".encode())
    _entry(tmp_path, h.hexdigest(), ".flac").write_bytes(b"encoded earlier")
    assert cache(audio, 16_000) == b"encoded earlier" and (cache.hits, cache.misses) == (1, 0)
