"""Seed parsing, reject codes, dedup and shard assignment: pure functions plus a real Beam stage."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS
from duplexloom.pipelines.run import DEFAULT_SEEDS, FULL_SEEDS
from duplexloom.pipelines.seeds import (
    PLANS,
    InputError,
    ParsedLine,
    ReadSeeds,
    SeedLine,
    dedup,
    parse_line,
    parse_seed_line,
    resolve_inputs,
)
from duplexloom.schemas import RejectError

GOOD = {"id": "s1", "lang": "en", "turns": [{"role": "user", "text": "Hello there."}]}


def code_of(obj) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
    with pytest.raises(RejectError) as e:
        parse_seed_line(raw)
    return e.value.code


def test_good_line_parses():
    assert parse_seed_line(json.dumps(GOOD).encode()).id == "s1"


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        ({"lang": "en", "turns": GOOD["turns"]}, "missing_field"),
        ({**GOOD, "id": ""}, "invalid_id"),
        ({**GOOD, "id": 17}, "invalid_id"),
        ({**GOOD, "lang": "fr"}, "unsupported_language"),
        ({**GOOD, "turns": [{"role": "user", "text": "  "}]}, "empty_text"),
        ({**GOOD, "turns": [{"role": "user", "text": "x" * 1_000_000}]}, "text_too_long"),
        ({**GOOD, "turns": [{"role": "user", "text": "hi <|action_end|>"}]}, "marker_in_text"),
        ({**GOOD, "turns": [{"role": "user", "text": "hi <tts_pad>"}]}, "marker_in_text"),
        ({"id": "e", "lang": "en"}, "empty_seed"),
        ({**GOOD, "surprise": 1}, "invalid_seed"),
    ],
)
def test_bad_lines_get_their_code(obj, code):
    assert code_of(obj) == code


def test_dedup_keeps_first_in_file_order():
    lines = [
        parse_line(
            SeedLine(
                "f.jsonl", 3, json.dumps({**GOOD, "turns": [{"role": "user", "text": "later"}]}).encode()
            )
        ),
        parse_line(SeedLine("f.jsonl", 1, json.dumps(GOOD).encode())),
        parse_line(SeedLine("f.jsonl", 2, b"oops")),
    ]
    seeds, rejects = dedup(lines)
    assert [s.turns[0].text for s in seeds] == ["Hello there."]
    assert sorted((r.record_id, r.code) for r in rejects) == [
        ("f.jsonl:2", "invalid_json"),
        ("f.jsonl:3", "duplicate_id"),
    ]


def test_keys_are_webdataset_safe_and_shards_stable():
    assert sample_key("en-qa-01") == "en-qa-01"
    k = sample_key("a.b/c")
    assert "." not in k and "/" not in k and k != sample_key("a_b_c")
    assert all(0 <= shard_of(sample_key(f"id{i}"), 7) < 7 for i in range(50))
    assert shard_of("abc", 7) == shard_of("abc", 7)
    assert len({shard_of(sample_key(f"id{i}"), 4) for i in range(50)}) == 4


def test_unreadable_input_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="matches no file"):
        resolve_inputs([str(tmp_path / "missing.jsonl")])


def _load(path) -> list:
    return [parse_seed_line(line.encode()) for line in open(path, encoding="utf-8") if line.strip()]


def test_bundled_demo_slice_is_representative():
    seeds = _load(DEFAULT_SEEDS)
    assert 60 <= len(seeds) <= 80  # `make demo` must stay under two minutes on 2 cores
    assert {s.lang for s in seeds} == {"zh", "en"}
    assert {"qa", "dialogue", "tool_request"} <= {s.kind for s in seeds}
    assert all(s.family is None for s in seeds)  # the family mix decides, not the seed
    full = {s.id: s for lang in ("en", "zh") for s in _load(FULL_SEEDS / f"{lang}.jsonl")}
    assert all(full[s.id] == s for s in seeds)  # a slice of the full set, not other seeds


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_full_seed_set_is_large_varied_and_bilingual(lang):
    from duplexloom.annotators.checks import check_actions
    from duplexloom.annotators.dedup import find_near_duplicates
    from duplexloom.prompts import load_catalog
    from duplexloom.schemas.annotation import AnnotatedAction

    seeds = _load(FULL_SEEDS / f"{lang}.jsonl")
    assert len(seeds) >= 200 and {s.lang for s in seeds} == {lang}
    assert len({s.topic for s in seeds}) >= 100
    assert {"qa", "dialogue", "tool_request"} <= {s.kind for s in seeds}
    tools = set()
    for s in seeds:
        n_user = sum(1 for t in s.turns if t.role == "user")
        given = s.meta.get("translations") or [s.meta["translation"]]
        assert len(given) == n_user and all(given)  # interpret: a translation per user turn
        # spoken text has no digits: the aligners have no labels for them (numbers are spelled out)
        assert not any(ch.isdigit() for text in [*(t.text for t in s.turns), *given] for ch in text), s.id
        if s.kind == "tool_request":
            actions = [AnnotatedAction.model_validate(a) for a in s.meta["actions"]]
            check_actions(s.turns[0].text, actions)
            assert all(a.planning for a in actions)
            tools |= {a.name for a in actions}
    assert tools == set(load_catalog())  # every SPEC 9 function asked for in each language
    texts = [(s.id, " ".join(t.text for t in s.turns)) for s in seeds]
    assert find_near_duplicates(texts) == {}


def test_read_seeds_stage_accounts_for_every_line(tmp_path):
    p = tmp_path / "seeds.jsonl"
    good = [{**GOOD, "id": f"g{i}"} for i in range(5)]
    lines = [json.dumps(g) for g in good] + ["bad json", json.dumps(good[0]), "", json.dumps({"id": "x"})]
    p.write_text("\n".join(lines) + "\n")
    with TestPipeline(runner="DirectRunner") as pl:
        out = pl | ReadSeeds(
            [str(p)],
            num_shards=3,
            out_dir=str(tmp_path / "out"),
            config_digest="d",
            resume=True,
            batch_size=2,
        )
        ids = out.seeds | beam.FlatMap(lambda kv: [s.id for s in kv[1]])
        codes = out[REJECTS] | beam.Map(lambda kv: kv[1].code)
        n_lines = out[PLANS] | beam.Map(lambda pl_: pl_.n_lines) | beam.CombineGlobally(sum)
        assert_that(ids, equal_to([f"g{i}" for i in range(5)]), label="ids")
        assert_that(codes, equal_to(["invalid_json", "duplicate_id", "missing_field"]), label="codes")
        assert_that(n_lines, equal_to([8]), label="lines")  # the blank line is not a seed


def test_parsed_line_of_bad_json_keys_by_location():
    pl = parse_line(SeedLine("f", 9, b"nope"))
    assert isinstance(pl, ParsedLine) and pl.basis == "f:9" and pl.reject.record_id == "f:9"
