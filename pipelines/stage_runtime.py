"""What a stage's DoFn does in its worker process besides its work: count and time its elements
(:func:`timed`, Beam metrics per stage) and set torch's thread count before a model is loaded
(:func:`set_torch_threads`).

Input: a stage name and an element count; a thread count. Output: Beam counters
``<stage>/elements`` and ``<stage>/busy_ms``; torch's intra-op thread setting of the process.
No reject codes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from apache_beam.metrics import Metrics


@contextmanager
def timed(stage: str, n: int = 1):
    """Counts ``n`` elements and the wall milliseconds spent in ``stage`` (Beam metrics)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        Metrics.counter(stage, "elements").inc(n)
        Metrics.counter(stage, "busy_ms").inc(int((time.perf_counter() - t0) * 1000))


def set_torch_threads(n: int | None) -> None:
    """torch's intra-op thread count for this process (the models are loaded once per worker);
    None leaves torch's default. A backend that does not use torch pays one import here."""
    if n is None:
        return
    import torch  # lazy: torch (~2 s), only for a set thread count; annotate/serialize never need it

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
