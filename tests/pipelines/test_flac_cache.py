"""The serialize stage's FLAC cache: the same bytes as encoding, read back on a hit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from duplexloom.pipelines.serialize import FlacCache
from duplexloom.timeline.sample_codec import decode_flac, encode_flac


def test_flac_cache_gives_encode_flac_bytes_and_serves_hits_from_disk(tmp_path):
    audio = (0.3 * np.sin(np.arange(16_000) / 7.0)).astype(np.float32)
    cache = FlacCache(str(tmp_path))
    first = cache(audio, 16_000)
    assert first == encode_flac(audio, 16_000)
    [entry] = list(Path(tmp_path).rglob("*.flac"))
    entry.write_bytes(b"sentinel")  # a hit must come from the file, not from a new encoding
    assert cache(audio, 16_000) == b"sentinel"
    assert cache(audio, 8_000) == encode_flac(audio, 8_000)  # the rate is part of the key
    other = audio.copy()
    other[100] += 1e-3
    assert cache(other, 16_000) != b"sentinel"
    back, sr = decode_flac(cache(other, 16_000))
    assert sr == 16_000 and np.abs(back - other).max() < 1e-4
