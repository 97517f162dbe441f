"""Content-addressed synthesis cache, so a rerun never synthesizes the same utterance twice.

Key: sha256 of canonical JSON of (text, language, speaker record, backend settings). Value: a WAV
file (PCM_24, lossless for our purpose) and a JSON side file with the sample rate, the native word
times, the length and the sha256 of the stored samples (as float32). WAV, not FLAC: a prompt-only
rerun reads every utterance back, and decoding PCM_24 WAV is about 3x faster than FLAC for about
1.4x the bytes (a cache is scratch space; the shards stay FLAC). An entry of 0.1's FLAC form (a
side file without length or hash) is a miss and is synthesized once more (docs/DECISIONS.md).
Layout and atomic writes are the content-addressed cache base's (``duplexloom/content_cache.py``),
so concurrent workers never read a half-written entry; the side file is written last and marks
the entry complete. :class:`CachedTTS` wraps any backend and only sends cache misses to it;
:meth:`CachedTTS.synthesize_lazy` returns cache hits without reading their audio (the path, length
and content hash instead), for callers that pass the audio on by reference.
No reject codes (the wrapped backend raises its own).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from duplexloom.content_cache import ContentCache
from duplexloom.schemas import Speaker
from duplexloom.schemas.clip import AudioRef

from .base import SynthResult, TTSBackend


def cache_key(text: str, speaker: Speaker, lang: str, settings: dict[str, Any]) -> str:
    payload = {
        "text": text,
        "lang": lang,
        "speaker": speaker.model_dump(mode="json"),
        "settings": settings,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SynthesisCache(ContentCache):
    """A directory of ``<key[:2]>/<key>.wav`` + ``<key>.json`` entries
    (:class:`~duplexloom.content_cache.ContentCache`)."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__(Path(directory), ".wav")  # Path: entry paths spelled as before (normalized)

    def lookup(self, key: str) -> SynthResult | None:
        """The entry without its audio (``audio=None``; path, length and hash set), or ``None``."""
        meta = self.read(key, ".json")
        info = None if meta is None else json.loads(meta)
        if info is None or "n_samples" not in info:  # none, or 0.1's FLAC form: synthesize again
            return self.counted(None)
        words = info["word_starts_samples"]
        return self.counted(
            SynthResult(
                audio=None,
                sample_rate=int(info["sample_rate"]),
                word_starts_samples=None if words is None else [(w, int(t)) for w, t in words],
                stored=AudioRef(
                    path=self.path(key),
                    sample_rate=int(info["sample_rate"]),
                    n_samples=int(info["n_samples"]),
                ),
                audio_sha256=info["sha256"],
            )
        )

    def put(self, key: str, result: SynthResult) -> SynthResult:
        """Store ``result``; returns what the cache now holds (24-bit samples), audio loaded."""
        pcm = quantize_24(result.audio)
        wav = self.write(key, lambda f: sf.write(f, pcm, result.sample_rate, format="WAV", subtype="PCM_24"))
        stored, sr = read_audio(wav, result.sample_rate)
        info = {
            "sample_rate": sr,
            "word_starts_samples": result.word_starts_samples,
            "n_samples": int(stored.shape[0]),
            "sha256": audio_sha256(stored),
        }
        self.write(key, json.dumps(info, ensure_ascii=False).encode("utf-8"), ".json")  # last: complete
        return SynthResult(
            audio=stored,
            sample_rate=sr,
            word_starts_samples=result.word_starts_samples,
            stored=AudioRef(path=wav, sample_rate=sr, n_samples=info["n_samples"]),
            audio_sha256=info["sha256"],
        )


def quantize_24(audio: np.ndarray) -> np.ndarray:
    """float samples -> 24-bit PCM in the top bits of int32, as libsndfile's FLAC writer quantizes
    (round half to even of x * 2**23, clipped to full scale). libsndfile's WAV writer rounds float
    input differently; the cache keeps the FLAC version's samples, so the shards did not change
    when it moved to WAV (and do not now)."""
    scaled = np.rint(np.asarray(audio, dtype=np.float64) * float(1 << 23))
    return (np.clip(scaled, -(1 << 23), (1 << 23) - 1).astype(np.int32)) << 8


def audio_sha256(audio: np.ndarray) -> str:
    """sha256 of the float32 samples: the identity of an utterance's audio (alignment cache keys)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(audio, dtype=np.float32)).cast("B")).hexdigest()


def read_audio(path: str, expected_rate: int | None = None) -> tuple[np.ndarray, int]:
    """float32 mono samples and rate of a stored utterance (WAV or FLAC)."""
    found = _read_mono_pcm24_wav(path) if path.endswith(".wav") else None
    audio, sr = found if found is not None else sf.read(path, dtype="float32")
    if expected_rate is not None and sr != expected_rate:
        raise ValueError(f"cached audio {path}: rate {sr} Hz, recorded {expected_rate} Hz")
    return audio, sr


def _read_mono_pcm24_wav(path: str) -> tuple[np.ndarray, int] | None:
    """This cache's own entries (mono 24-bit PCM WAV, as ``put`` writes them) without libsndfile:
    about 2x faster for the short files a rerun reads by the thousand, and the same float32 values
    (int24 / 2**23 is exact). ``None`` for any other file, which soundfile then reads."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 16:
            fmt = struct.unpack_from("<HHIIHH", data, body)  # tag, channels, rate, byte rate, align, bits
        elif chunk == b"data":
            if fmt is None or (fmt[0], fmt[1], fmt[5]) != (1, 1, 24) or size % 3 or body + size > len(data):
                return None
            n = size // 3
            # Each sample read as a little-endian int32 at a stride of 3 bytes: its 24 bits land in
            # the low bytes (the top byte is the next sample's; the shift drops it). The buffer
            # gets one more byte so that the last read stays inside it.
            buf = data[body : body + size] + b"\0"
            as_int32 = np.ndarray((n,), dtype="<i4", buffer=buf, strides=(3,))
            audio = (as_int32 << 8).astype(np.float32)
            audio *= np.float32(2.0**-31)
            return audio, int(fmt[2])
        pos = body + size + (size & 1)
    return None


def load(result: SynthResult) -> SynthResult:
    """``result`` with its audio (read from its stored copy when it was left out)."""
    if result.audio is not None:
        return result
    ref = result.stored
    if ref is None:
        raise ValueError("SynthResult without audio or a stored copy")
    audio, _ = read_audio(ref.path, ref.sample_rate)
    if audio.shape[0] != ref.n_samples:
        raise ValueError(f"cached audio {ref.path}: {audio.shape[0]} samples, recorded {ref.n_samples}")
    return dataclasses.replace(result, audio=audio)


class CachedTTS(TTSBackend):
    """Wraps ``backend``; results come from ``cache`` when present, else are synthesized and stored.
    Either way a result is what the cache holds: the backend's audio quantized to 24-bit PCM, so a
    first run and a rerun see the same samples."""

    def __init__(self, backend: TTSBackend, cache: SynthesisCache) -> None:
        super().__init__(backend.config)
        self.backend = backend
        self.cache = cache
        self.name = backend.name  # type: ignore[misc]

    def settings_key(self) -> dict[str, Any]:
        return self.backend.settings_key()

    def synthesize_lazy(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        """Like :meth:`synthesize`, but a cache hit comes without its audio (``audio=None``, with
        ``stored`` and ``audio_sha256``); fresh results keep theirs."""
        settings = self.backend.settings_key()
        keys = [cache_key(t, speaker, lang, settings) for t in texts]
        results: list[SynthResult | None] = [self.cache.lookup(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            fresh = self.backend.synthesize([texts[i] for i in todo], speaker, lang)
            if len(fresh) != len(todo):
                raise RuntimeError(f"TTS backend returned {len(fresh)} results for {len(todo)} texts")
            for i, r in zip(todo, fresh, strict=True):
                results[i] = self.cache.put(keys[i], r)
        return [r for r in results if r is not None]

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        return [load(r) for r in self.synthesize_lazy(texts, speaker, lang)]
