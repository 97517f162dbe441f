"""Stage ``annotate``: seeds -> :class:`Annotation` via ``duplexloom.annotators.annotate_batch``.

Input: deterministic batches of seeds (one shard's seeds in id order, ``annotate_batch_size`` at a
time, made by :mod:`.seeds`), so the same run always sends the same batches: the LLM client's
bounded concurrency works inside a batch. The task family is decided here, once, before the
annotator runs: the seed's own when it names one, else a seeded draw from ``timeline.family_mix``
(``duplexloom.timeline.families.choose_family``). The annotator annotates for it and the
annotation carries it (``Annotation.family``); the later stages read it from there.
Output: ``(seed_id, (Seed, Annotation))``; rejects ``(shard, Reject)`` on the ``rejects`` tag.
Reject codes: ``unknown_family`` (the seed names a family that does not exist) and whatever the
annotator raises (``internal_error`` by policy).
"""

from __future__ import annotations

import logging

import apache_beam as beam

from duplexloom.annotators import annotate_batch
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.stage_runtime import timed
from duplexloom.schemas import Reject
from duplexloom.timeline.families import choose_family

STAGE = "annotate"
log = logging.getLogger("duplexloom.pipelines")


class AnnotateBatch(beam.DoFn):
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.acfg = self.cfg.annotator
        self.tcfg = self.cfg.timeline

    def process(self, batch):
        shard, seeds = batch
        cfg = self.cfg
        families: dict[str, str] = {}
        ready = []
        for seed in seeds:
            fam, rej = call_routed(
                STAGE,
                seed.id,
                choose_family,
                seed.family,
                self.tcfg,
                cfg.run_seed,
                seed.id,
                policy=cfg.on_internal_error,
            )
            if rej is not None:
                yield beam.pvalue.TaggedOutput(REJECTS, (shard, rej))
            else:
                families[seed.id] = fam
                ready.append(seed)
        if not ready:
            return
        with timed(STAGE, len(ready)):
            results, rej = call_routed(
                STAGE,
                ready[0].id,
                annotate_batch,
                ready,
                self.acfg,
                run_seed=cfg.run_seed,
                families=[families[s.id] for s in ready],
                policy=cfg.on_internal_error,
            )
        if rej is not None:
            # The batch call itself broke: retry one seed at a time so only the culprit is rejected.
            results = []
            for seed in ready:
                one, r1 = call_routed(
                    STAGE,
                    seed.id,
                    annotate_batch,
                    [seed],
                    self.acfg,
                    run_seed=cfg.run_seed,
                    families=[families[seed.id]],
                    policy=cfg.on_internal_error,
                )
                results.append(r1 if r1 is not None else one[0])
        if len(results) != len(ready):
            raise RuntimeError(f"annotate_batch returned {len(results)} results for {len(ready)} seeds")
        for seed, res in zip(ready, results, strict=True):
            if isinstance(res, Reject):
                yield beam.pvalue.TaggedOutput(
                    REJECTS, (shard_of(sample_key(seed.id), cfg.shards.num_shards), res)
                )
            else:
                yield (seed.id, (seed, res))
        if cfg.progress:
            log.info("[annotate] shard %d: batch of %d seeds done", shard, len(ready))
