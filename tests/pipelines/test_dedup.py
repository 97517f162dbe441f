"""The run-wide near-duplicate step on a 10k-seed synthetic set with planted near-duplicates: the same
records are dropped, naming the same kept ids, at annotate batch sizes 1, 8 and 64."""

from __future__ import annotations

import json
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from duplexloom.annotators.dedup import find_near_duplicates, resolve_drops
from duplexloom.pipelines.annotate import AnnotateBatch
from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.dedup import NearDuplicates
from duplexloom.pipelines.routing import REJECTS
from duplexloom.pipelines.seeds import ReadSeeds

N_SEEDS = 10_000
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def planted_near_duplicate(text: str, rnd: random.Random) -> str:
    """Case, punctuation and one letter changed: normalized ratio stays above 90."""
    i = rnd.randrange(5, len(text) - 5)
    while not text[i].isalpha():
        i += 1
    return text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1 :].upper() + "!"


def synthetic_set(n: int = N_SEEDS) -> tuple[list[dict], dict[str, str]]:
    """n seeds; every 40th original gets a planted near-duplicate (and every 400th a second one)."""
    rnd = random.Random(7)
    vocab = sorted({"".join(rnd.choice(LETTERS) for _ in range(rnd.randint(3, 8))) for _ in range(4000)})
    seeds, expected = [], {}
    n_orig = n - n // 40
    for i in range(n_orig):
        q = " ".join(rnd.choice(vocab) for _ in range(9)) + "?"
        a = " ".join(rnd.choice(vocab) for _ in range(9)) + "."
        seeds.append({"id": f"s{i:05d}", "q": q, "a": a})
    for k, i in enumerate(range(0, n_orig, 40)):
        orig = seeds[i]
        copies = 2 if k % 10 == 0 else 1
        for c in range(copies):
            dup_id = f"{'a' if c == 0 else 't'}{i:05d}"  # ids sort before and after the original
            seeds.append({"id": dup_id, "q": planted_near_duplicate(orig["q"], rnd), "a": orig["a"]})
    # The kept one is fixed by the ids: the smallest id of each group survives.
    groups: dict[str, list[str]] = {}
    for s in seeds:
        groups.setdefault(s["id"][1:], []).append(s["id"])
    for ids in groups.values():
        for dropped in sorted(ids)[1:]:
            expected[dropped] = sorted(ids)[0]
    lines = [
        {
            "id": s["id"],
            "lang": "en",
            "family": "dialogue",
            "turns": [{"role": "user", "text": s["q"]}, {"role": "assistant", "text": s["a"]}],
        }
        for s in seeds
    ]
    return lines, expected


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory):
    lines, expected = synthetic_set()
    p = tmp_path_factory.mktemp("dedup") / "seeds.jsonl"
    rnd = random.Random(3)
    rnd.shuffle(lines)  # file order is not id order
    p.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return p, expected, len(lines)


def test_pure_filter_finds_every_planted_duplicate(seeds_file):
    p, expected, n_lines = seeds_file
    texts = []
    for line in p.read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        texts.append((s["id"], " ".join(t["text"] for t in s["turns"])))
    drops = find_near_duplicates(texts)
    assert {k: v[0] for k, v in drops.items()} == expected
    assert len(expected) >= 250 and len(texts) >= N_SEEDS


def test_resolve_drops_keeps_by_id_order_through_chains():
    # b~a, c~b but c is not similar to a: a is kept, b dropped (naming a), c kept (b is gone)
    assert resolve_drops([("a", "b", 95), ("b", "c", 93)]) == {"b": ("a", 95)}
    assert resolve_drops([("a", "c", 91), ("b", "c", 97)]) == {"c": ("a", 91)}
    assert resolve_drops([]) == {}


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_same_drops_at_every_annotate_batch_size(seeds_file, tmp_path, batch_size):
    p, expected, n_lines = seeds_file
    cfg = load_config(None, [f"output.dir={tmp_path}", "progress=false", f"annotate_batch_size={batch_size}"])
    n = cfg.shards.num_shards
    with TestPipeline(runner="DirectRunner") as pl:
        seeds = pl | ReadSeeds(
            [str(p)],
            num_shards=n,
            out_dir=str(tmp_path),
            config_digest="d",
            resume=False,
            batch_size=batch_size,
        )
        ann = seeds.seeds | beam.ParDo(AnnotateBatch(cfg)).with_outputs(REJECTS, main="ok")
        out = ann.ok | NearDuplicates(90, n)
        dropped = out[REJECTS] | beam.Map(
            lambda kv: (kv[1].record_id, kv[1].code, kv[1].detail.split("seed ")[1])
        )
        kept = out.ok | beam.combiners.Count.Globally()
        want = [(d, "near_duplicate", f"{k} (kept)") for d, k in expected.items()]
        assert_that(dropped, equal_to(want), label="dropped")
        assert_that(kept, equal_to([n_lines - len(expected)]), label="kept")
