"""Shared pieces of the stage modules: the per-stage timer and the up-front config check.

``validate_stage_configs`` builds every sub-config owned by another package (annotator, timeline,
TTS backend, aligner) so that a typo fails when the config is loaded, not on a worker.
No reject codes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from apache_beam.metrics import Metrics

if TYPE_CHECKING:
    from duplexloom.pipelines.config import RunConfig


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
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def tts_options(cfg: RunConfig) -> dict:
    """The TTS backend's config: the session sample rate unless the user set one."""
    opts = dict(cfg.tts.options)
    opts.setdefault("sample_rate", cfg.timeline_config().sample_rate)
    return opts


def validate_stage_configs(cfg: RunConfig) -> None:
    cfg.annotator_config()
    cfg.timeline_config()
    # Public registry accessors only (the registries' dicts are the packages' business).
    from duplexloom.aligners.base import aligner_class, available_aligners
    from duplexloom.tts_adapters.base import available_tts, tts_class

    if cfg.tts.backend not in available_tts():
        raise KeyError(f"tts.backend {cfg.tts.backend!r} is unknown; known: {available_tts()}")
    tts_class(cfg.tts.backend).config_model(**tts_options(cfg))
    if cfg.aligner.enabled:
        if cfg.aligner.backend not in available_aligners():
            raise KeyError(
                f"aligner.backend {cfg.aligner.backend!r} is unknown; known: {available_aligners()}"
            )
        aligner_class(cfg.aligner.backend).config_model(**cfg.aligner.options)
