"""How records travel between the job's stages and what a worker process sets up: the job's speed
tricks, fenced in one module so the stage code reads without them.

The API the stages use: :func:`seal` a record where it enters a shuffle and ``.open()`` it where it
is used; :func:`pack_spans` an alignment's spans where they leave the aligner and
:func:`unpack_spans` them where a timeline is built; :func:`prepare_worker` at the start of every
worker-side model load and of the job. Each trick, what it saves, where it was measured
(docs/DECISIONS.md, "The Beam job" and "Layering, one home per concept", has the numbers):

- **Sealed records** (:class:`Sealed`). Records without a registered coder are pickled by the
  runner at every fusion break, and for its size metrics on a sample of every step's outputs; a
  DirectRunner GroupByKey decodes each value twice. A planned session was pickled ~3 times and
  unpickled twice on its way through ``GroupSession``, aligned utterances and encoded samples
  likewise: ~0.8 ms per seed, ~10 % of a prompt-only rerun's per-seed cost (an instrumented
  pickle coder on a 256-seed prompt-only rerun, commit 412769d). Sealed: pickled once where it
  enters a shuffle, unpickled once where it is used; in between the runner copies bytes.
- **Packed spans** (:func:`pack_spans`). An aligned utterance's word and character spans cross the
  session shuffle as ``(text, start_samples, end_samples, confidence)`` tuples: a pydantic
  ``TimedSpan`` pickles to ~230 bytes in ~4 us, its tuple to ~30 bytes in ~0.4 us. They become
  validated ``TimedSpan``\\ s once, in Build, in one ``TypeAdapter`` call per utterance (~30 %
  faster than one call per span; commits 412769d, 06241d3).
- **A fixed glibc mmap threshold** (:func:`pin_mmap_threshold`). glibc raises its threshold every
  time a large mapped block is freed (up to 32 MB): after the first utterances every audio buffer
  and aligner tensor (hundreds of KB to a few MB) comes from the heap, which fragments, and a
  worker's resident memory creeps up with the utterances it has processed (1x -> 4x the seeds grew
  peak RSS by 60-110 MB even with the spool; flat with the threshold fixed: ``make bench
  BENCH=pipeline``, "peak memory", commit 6539538). Same as ``MALLOC_MMAP_THRESHOLD_=131072`` in
  the environment, without needing the launcher (Dataflow workers). A no-op off glibc.

Below ``pipelines/``, where this module cannot be imported, one more lives with the format it
reads: ``tts_adapters/cache.py`` reads its own mono PCM_24 WAV entries with numpy (a strided int32
view, ~2x faster than libsndfile on short clips, same float32 values; commit feb1104).
No reject codes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import pickle
from typing import Any

from pydantic import TypeAdapter

from duplexloom.schemas import TimedSpan
from duplexloom.schemas.clip import PackedSpan  # (text, start_samples, end_samples, confidence)

log = logging.getLogger("duplexloom.pipelines")


# --- sealed records ------------------------------------------------------------------------


class Sealed:
    """A value carried as its pickle; two are equal when their bytes are."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    @classmethod
    def of(cls, value: Any) -> Sealed:
        return cls(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    def open(self) -> Any:
        return pickle.loads(self.blob)

    def __reduce__(self):
        return (Sealed, (self.blob,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)

    def __repr__(self) -> str:
        return f"Sealed({len(self.blob)} bytes)"


def seal(value: Any) -> Sealed:
    """``value`` as it should cross a shuffle (open it with ``.open()`` where it is used)."""
    return Sealed.of(value)


# --- packed spans --------------------------------------------------------------------------

_SPAN_FIELDS = ("text", "start_samples", "end_samples", "confidence")
_SPANS = TypeAdapter(tuple[TimedSpan, ...])


def pack_spans(spans) -> tuple[PackedSpan, ...]:
    """``TimedSpan``\\ s (or anything with their fields) as plain tuples."""
    return tuple((s.text, s.start_samples, s.end_samples, s.confidence) for s in spans)


def unpack_spans(packed) -> tuple[TimedSpan, ...]:
    """Packed spans back as validated ``TimedSpan``\\ s (raises on an invalid one)."""
    return _SPANS.validate_python([dict(zip(_SPAN_FIELDS, p, strict=True)) for p in packed])


# --- worker process set-up -----------------------------------------------------------------

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value
_pinned: bool | None = None


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process (once); True when it is in effect."""
    global _pinned
    if _pinned is not None:
        return _pinned
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    _pinned = bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    if not _pinned:
        log.info("memory: no glibc mallopt here; leaving the allocator as it is")
    return _pinned


def prepare_worker() -> None:
    """Once per process, before a stage loads its model (and in the launching process, where the
    DirectRunner runs the stages): the allocator setting above."""
    pin_mmap_threshold()
