"""Clock constants and the only seconds<->samples conversions (SPEC section 2).

Inside the code, time is an integer sample index at the session sample rate; seconds appear only at
the edges (JSON input, traces, reports). The chunk length is defined here, once.
"""

from __future__ import annotations

import math

DEFAULT_SAMPLE_RATE = 16_000
CHUNK_MS = 160
USER_FEATURES_PER_CHUNK = 2  # 80 ms each
ASSISTANT_AUDIO_TOKENS_PER_CHUNK = 4  # 40 ms each


def chunk_samples(sample_rate: int, chunk_ms: int = CHUNK_MS) -> int:
    """Samples in one chunk; the chunk length must be a whole number of samples."""
    n = sample_rate * chunk_ms
    if n % 1000:
        raise ValueError(f"chunk of {chunk_ms} ms is not a whole number of samples at {sample_rate} Hz")
    return n // 1000


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """Round a time in seconds to the nearest sample index."""
    return int(round(seconds * sample_rate))


def samples_to_seconds(samples: int, sample_rate: int) -> float:
    return samples / sample_rate


def num_chunks(duration_samples: int, chunk_len_samples: int) -> int:
    """A session of duration D has ceil(D / chunk) chunks."""
    return max(0, math.ceil(duration_samples / chunk_len_samples))


def chunk_of(t_samples: int, chunk_len_samples: int) -> int:
    """The chunk that holds sample index t: floor(t / chunk)."""
    return t_samples // chunk_len_samples
