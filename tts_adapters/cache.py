"""Content-addressed synthesis cache, so a rerun never synthesizes the same utterance twice.

Key: sha256 of canonical JSON of (text, language, speaker record, backend settings). Value: a FLAC
file (PCM_24, lossless for our purpose) and a JSON side file with the sample rate and native word
times. Writes go through a temporary file and ``os.replace`` so concurrent workers never read a
half-written entry. :class:`CachedTTS` wraps any backend and only sends cache misses to it.
No reject codes (the wrapped backend raises its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from duplexloom.schemas import Speaker

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


class SynthesisCache:
    """A directory of ``<key[:2]>/<key>.flac`` + ``<key>.json`` entries."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.hits = 0
        self.misses = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.dir / key[:2]
        return d / f"{key}.flac", d / f"{key}.json"

    def get(self, key: str) -> SynthResult | None:
        flac, meta = self._paths(key)
        if not (flac.exists() and meta.exists()):
            self.misses += 1
            return None
        info = json.loads(meta.read_text(encoding="utf-8"))
        audio, sr = sf.read(flac, dtype="float32")
        if sr != info["sample_rate"]:
            raise ValueError(f"cache entry {key}: flac rate {sr} != recorded {info['sample_rate']}")
        words = info["word_starts_samples"]
        self.hits += 1
        return SynthResult(
            audio=audio,
            sample_rate=sr,
            word_starts_samples=None if words is None else [(w, int(t)) for w, t in words],
        )

    def put(self, key: str, result: SynthResult) -> None:
        flac, meta = self._paths(key)
        flac.parent.mkdir(parents=True, exist_ok=True)
        # FLAC holds at most full scale; clipping here is what any writer of the audio would do.
        audio = np.clip(result.audio, -1.0, 1.0)
        for path, write in (
            (flac, lambda f: sf.write(f, audio, result.sample_rate, format="FLAC", subtype="PCM_24")),
            (
                meta,
                lambda f: f.write(
                    json.dumps(
                        {
                            "sample_rate": result.sample_rate,
                            "word_starts_samples": result.word_starts_samples,
                        },
                        ensure_ascii=False,
                    ).encode("utf-8")
                ),
            ),
        ):
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)


class CachedTTS(TTSBackend):
    """Wraps ``backend``; results come from ``cache`` when present, else are synthesized, stored and
    read back. Either way a result is what the backend returned, quantized to 24-bit PCM."""

    def __init__(self, backend: TTSBackend, cache: SynthesisCache) -> None:
        super().__init__(backend.config)
        self.backend = backend
        self.cache = cache
        self.name = backend.name  # type: ignore[misc]

    def settings_key(self) -> dict[str, Any]:
        return self.backend.settings_key()

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        settings = self.backend.settings_key()
        keys = [cache_key(t, speaker, lang, settings) for t in texts]
        results: list[SynthResult | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            fresh = self.backend.synthesize([texts[i] for i in todo], speaker, lang)
            for i, r in zip(todo, fresh, strict=True):
                self.cache.put(keys[i], r)
                # What the cache holds (24-bit), not the fresh float audio: a first run and a rerun
                # from the cache must see the same samples (byte-identical shards).
                results[i] = self.cache.get(keys[i])
        return [r for r in results if r is not None]
