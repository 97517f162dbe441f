"""Near-duplicate filter throughput (seeds/s) on the 10k synthetic set of ``tests/pipelines/test_dedup``.

Two numbers: the pure core in one process (normalize + MinHash bands + block comparisons + id-order
resolution), and the Beam step ``NearDuplicates`` on the DirectRunner over already annotated
dialogues (what a run adds). Also printed: the candidate comparisons blocking left, against the
n*(n-1)/2 of comparing every pair. Reference only (no target is asserted).
"""

from __future__ import annotations

import time
from collections import defaultdict

import apache_beam as beam

from duplexloom.annotators.dedup import band_keys, find_near_duplicates, normalize
from duplexloom.pipelines.dedup import NearDuplicates
from duplexloom.schemas import Seed
from duplexloom.schemas.annotation import AnnotatedTurn, Annotation
from tests.pipelines.test_dedup import synthetic_set


def main() -> None:
    lines, expected = synthetic_set()
    texts = [(x["id"], " ".join(t["text"] for t in x["turns"])) for x in lines]
    n = len(texts)

    t0 = time.perf_counter()
    drops = find_near_duplicates(texts)
    dt = time.perf_counter() - t0
    blocks: dict[str, list[str]] = defaultdict(list)
    for rid, text in texts:
        for key in band_keys(normalize(text)):
            blocks[key].append(rid)
    candidates = sum(len(m) * (len(m) - 1) // 2 for m in blocks.values())
    found = sum(1 for k, v in drops.items() if expected.get(k) == v[0])
    print(
        f"pure core: {n} seeds in {dt:.2f} s = {n / dt:,.0f} seeds/s; dropped {len(drops)} "
        f"(planted {len(expected)}, found {found}); candidate pairs {candidates:,} of {n * (n - 1) // 2:,}"
    )

    elements = []
    for x in lines:
        seed = Seed(**x)
        ann = Annotation(
            seed_id=seed.id,
            lang=seed.lang,
            family="dialogue",
            turns=tuple(AnnotatedTurn(role=t.role, text=t.text) for t in seed.turns),
        )
        elements.append((seed.id, (seed, ann)))
    t0 = time.perf_counter()
    with beam.Pipeline(runner="DirectRunner") as p:
        out = p | beam.Create(elements) | NearDuplicates(90, 8)
        _ = out.ok | beam.combiners.Count.Globally()
    dt = time.perf_counter() - t0
    print(f"beam step (DirectRunner): {n} seeds in {dt:.2f} s = {n / dt:,.0f} seeds/s")
