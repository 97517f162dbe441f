"""``annotate_batch``: seeds in, one ``Annotation`` or ``Reject`` per seed out, same order.

This is what the Beam annotation stage calls per bundle, with the family it decided for each seed
(the caller decides, once: ``duplexloom.timeline.families.choose_family``; an unknown family here
is a bug and raises). It picks the backend from the config, runs the annotator over all seeds
concurrently (the LLM client bounds the requests in flight), turns every ``RejectError`` into a
``Reject`` with ``stage="annotate"``,
and drops a generated dialogue that is a near-duplicate of its own seed (a per-record check; the
run-wide filter across seeds is the Beam step ``duplexloom.pipelines.dedup``, so its reach does not
depend on the batch size). It never raises for a bad record; a bug (invariant violation) still raises.

Reject codes: those of the annotators (``needs_llm``, ``llm_invalid_output``, ``llm_unavailable``,
``anchor_not_found``, ``anchor_order``, ``unknown_tool``, ``invalid_arguments``,
``marker_in_text``, ``cognition_*``, ...) and ``near_duplicate``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from duplexloom.schemas.annotation import Annotation
from duplexloom.schemas.family import FAMILIES, Family
from duplexloom.schemas.reject import Reject, RejectError
from duplexloom.schemas.rng import seeded_rng
from duplexloom.schemas.seed import Seed

from .base import STAGE, Annotator
from .config import AnnotatorConfig
from .dedup import too_similar
from .offline import OfflineAnnotator

T = TypeVar("T")


def make_annotator(config: AnnotatorConfig) -> Annotator:
    if config.backend == "offline":
        return OfflineAnnotator(config)
    from .llm import LLMAnnotator  # lazy: openai (~0.8 s, via .client), only for the llm backend

    return LLMAnnotator(config)


def _seed_text(seed: Seed) -> str:
    return " ".join([seed.topic or "", *(t.text for t in seed.turns)])


def dialogue_text(a: Annotation) -> str:
    """The text near-duplicates are judged on: every turn of the annotated dialogue."""
    return " ".join(t.text for t in a.turns)


def drop_near_duplicates(
    seeds: list[Seed], results: list[Annotation | Reject], threshold: int
) -> list[Annotation | Reject]:
    """Reject a generated dialogue (provenance ``turns`` from an LLM) too close to its own seed."""
    out: list[Annotation | Reject] = []
    for seed, res in zip(seeds, results, strict=True):
        if isinstance(res, Reject) or not res.provenance.get("turns", "").startswith("llm") or not seed.turns:
            out.append(res)
            continue
        score = too_similar(dialogue_text(res), _seed_text(seed), threshold)
        if score is not None:
            detail = f"ratio {score} to its seed"
            out.append(Reject(record_id=seed.id, stage=STAGE, code="near_duplicate", detail=detail))
            continue
        out.append(res)
    return out


async def annotate_batch_async(
    seeds: list[Seed],
    config: AnnotatorConfig,
    *,
    run_seed: int,
    families: Sequence[Family],
) -> list[Annotation | Reject]:
    if len(families) != len(seeds):
        raise ValueError(f"{len(families)} families for {len(seeds)} seeds")
    unknown = sorted({f for f in families if f not in FAMILIES})
    if unknown:
        raise ValueError(f"families {unknown} are not among {list(FAMILIES)} (the caller decides them)")
    annotator = make_annotator(config)

    async def one(seed: Seed, family: Family) -> Annotation | Reject:
        try:
            return await annotator.annotate(seed, family, seeded_rng(run_seed, seed.id, STAGE))
        except RejectError as e:
            return e.to_reject(seed.id, STAGE)

    try:
        results = list(await asyncio.gather(*(one(s, f) for s, f in zip(seeds, families, strict=True))))
    finally:
        close = getattr(annotator, "aclose", None)
        if close is not None:
            await close()
    return drop_near_duplicates(list(seeds), results, config.dedup_threshold)


def run_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def annotate_batch(
    seeds: list[Seed],
    config: AnnotatorConfig,
    *,
    run_seed: int,
    families: Sequence[Family],
) -> list[Annotation | Reject]:
    """One ``Annotation`` or ``Reject`` per seed, in the order of ``seeds``; ``families[i]`` is the
    family decided for ``seeds[i]``. Never raises for a bad seed."""
    return run_coro(annotate_batch_async(seeds, config, run_seed=run_seed, families=families))
