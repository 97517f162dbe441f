"""Stage ``dedup``: run-wide near-duplicate filter over the annotated dialogues (the CT recipe).

Input: ``(seed_id, (Seed, Annotation))`` from the annotate stage. Output: the same elements minus
the near-duplicates; each dropped one becomes a ``(shard, Reject)`` with code ``near_duplicate``
on the ``rejects`` tag, naming the kept id and the ratio.

The pure core is :mod:`duplexloom.annotators.dedup`: every dialogue's normalized text is keyed by
its MinHash LSH bands, texts sharing a band are compared (thefuzz ratio above
``annotator.dedup_threshold``) in parallel per band, and the similar pairs (few) are resolved in
one place, in id order, into "dropped -> kept". Nothing depends on how seeds were batched or
bundled, so the result is the same for every ``annotate_batch_size`` and every runner.
Reject codes: ``near_duplicate``.
"""

from __future__ import annotations

import apache_beam as beam

from duplexloom.annotators.batch import dialogue_text
from duplexloom.annotators.dedup import band_keys, normalize, resolve_drops, similar_pairs
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS
from duplexloom.schemas import Reject

STAGE = "dedup"


def _keyed(element):
    seed_id, (_, annotation) = element
    norm = normalize(dialogue_text(annotation))
    return [(key, (seed_id, norm)) for key in band_keys(norm)]


class _DropNearDuplicates(beam.DoFn):
    def __init__(self, num_shards: int) -> None:
        self.num_shards = num_shards

    def process(self, element, drops):
        seed_id = element[0]
        hit = drops.get(seed_id)
        if hit is None:
            yield element
            return
        kept, score = hit
        rej = Reject(
            record_id=seed_id,
            stage=STAGE,
            code="near_duplicate",
            detail=f"ratio {score} to the dialogue of seed {kept} (kept)",
        )
        yield beam.pvalue.TaggedOutput(REJECTS, (shard_of(sample_key(seed_id), self.num_shards), rej))


class NearDuplicates(beam.PTransform):
    """Drop near-duplicate annotated dialogues run-wide; outputs ``ok`` and ``rejects``."""

    def __init__(self, threshold: int, num_shards: int) -> None:
        super().__init__()
        self.threshold = threshold
        self.num_shards = num_shards

    def expand(self, annotated):
        threshold = self.threshold
        drops = (
            annotated
            | "BandKeys" >> beam.FlatMap(_keyed)
            | "GroupBands" >> beam.GroupByKey()
            | "CompareBlocks" >> beam.FlatMap(lambda kv: similar_pairs(kv[1], threshold))
            | "DistinctPairs" >> beam.Distinct()
            | "CollectPairs" >> beam.combiners.ToList()
            | "Resolve" >> beam.Map(resolve_drops)
        )
        return annotated | "DropNearDuplicates" >> beam.ParDo(
            _DropNearDuplicates(self.num_shards), beam.pvalue.AsSingleton(drops)
        ).with_outputs(REJECTS, main="ok")
