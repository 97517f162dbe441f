"""The chunk grid (SPEC section 2): chunk length, chunk count, sample <-> chunk conversions.

Input: integer sample times at the session sample rate. Output: chunk indices / sample indices.
Chunk ``c`` covers ``[c * chunk_len, (c + 1) * chunk_len)``. No reject codes: a grid whose chunk is
not a whole number of samples is a configuration bug and raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duplexloom.schemas.units import CHUNK_MS, DEFAULT_SAMPLE_RATE, chunk_samples, num_chunks


@dataclass(frozen=True)
class ChunkGrid:
    """The session clock cut into chunks of ``chunk_ms`` (default 160 ms)."""

    sample_rate: int = DEFAULT_SAMPLE_RATE
    chunk_ms: int = CHUNK_MS
    chunk_len: int = field(init=False)  # samples per chunk

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_len", chunk_samples(self.sample_rate, self.chunk_ms))

    def n_chunks(self, duration_samples: int) -> int:
        """A session of ``duration_samples`` has ``ceil(D / chunk_len)`` chunks."""
        return num_chunks(duration_samples, self.chunk_len)

    def chunk_of(self, t_samples: int) -> int:
        """The chunk holding sample index ``t_samples`` (floor)."""
        return t_samples // self.chunk_len

    def chunk_start(self, c: int) -> int:
        """First sample of chunk ``c``."""
        return c * self.chunk_len

    def chunk_end(self, c: int) -> int:
        """One past the last sample of chunk ``c`` (half-open)."""
        return (c + 1) * self.chunk_len

    def chunk_start_s(self, c: int) -> float:
        """Start of chunk ``c`` in seconds (for traces and reports only)."""
        return c * self.chunk_len / self.sample_rate
