"""Keep a worker's memory flat: a fixed glibc mmap threshold.

Why: glibc raises its mmap threshold every time a large mmapped block is freed (up to 32 MB on
64-bit). After the first few utterances, every audio buffer and aligner tensor (hundreds of KB to
a few MB) comes from the heap instead of its own mapping, the heap fragments and is rarely
returned, and a long-running worker's resident memory creeps up with the number of utterances it
has processed (measured: 1x -> 4x the seeds grew peak RSS by 60-110 MB even with the spool).
Setting ``M_MMAP_THRESHOLD`` explicitly turns the dynamic adjustment off: large buffers are mapped
and unmapped on their own, and the peak stays flat (``make bench BENCH=pipeline``). Same effect as
``MALLOC_MMAP_THRESHOLD_=131072`` in the environment, but it needs no launcher cooperation, which
matters on Dataflow workers. A no-op off glibc (macOS, musl).
No reject codes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("duplexloom.pipelines")

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value
_done: bool | None = None


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process (once); True when it is in effect."""
    global _done
    if _done is not None:
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    _done = bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    if not _done:
        log.info("memory: no glibc mallopt here; leaving the allocator as it is")
    return _done
