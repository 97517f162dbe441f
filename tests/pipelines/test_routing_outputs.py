"""The routing point, atomic shard writing, resume state and the manifest/rejects/summary files."""

from __future__ import annotations

import io as pyio
import json

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from duplexloom import storage
from duplexloom.pipelines.outputs import (
    MANIFEST_SCHEMA,
    build_summary,
    manifest_bytes,
    read_manifest,
    write_outputs,
)
from duplexloom.pipelines.routing import INTERNAL_ERROR, call_routed
from duplexloom.pipelines.shards import EncodedSample, ShardResult, load_finished_state, shard_bytes
from duplexloom.schemas import Reject, RejectError
from duplexloom.schemas.manifest import ManifestRow
from duplexloom.timeline.sample_codec import iter_shard
from tests.pipelines.manifest_rows import manifest_row


def _raise_reject():
    raise RejectError("too_loud", "peak over 0 dBFS")


def _raise_bug():
    raise ZeroDivisionError("boom")


def test_reject_error_becomes_reject():
    out, rej = call_routed("tts", "s1", _raise_reject)
    assert out is None and (rej.record_id, rej.stage, rej.code) == ("s1", "tts", "too_loud")


def test_other_exceptions_become_internal_error_with_traceback_or_fail():
    out, rej = call_routed("build", "s2", _raise_bug)
    assert rej.code == INTERNAL_ERROR and "ZeroDivisionError" in rej.detail and "Traceback" in rej.detail
    with pytest.raises(ZeroDivisionError):
        call_routed("build", "s2", _raise_bug, policy="fail")
    assert call_routed("x", "s3", lambda a, b=0: a + b, 1, b=2) == (3, None)


def _sample(key: str, shard: int = 0) -> EncodedSample:
    return EncodedSample(
        shard,
        key,
        {"json": json.dumps({"k": key}).encode(), "trace.txt": b"t"},
        manifest_row(key, shard),
        {"response_gap_s": [0.32]},
    )


def test_shard_bytes_sorted_and_independent_of_arrival_order():
    a = shard_bytes([_sample("b"), _sample("a"), _sample("c")])
    b = shard_bytes([_sample("c"), _sample("b"), _sample("a")])
    assert a == b
    assert [k for k, _ in iter_shard(pyio.BytesIO(a))] == ["a", "b", "c"]


def test_write_atomic_leaves_only_the_final_file(tmp_path):
    target = str(tmp_path / "x.tar")
    storage.write_atomic(target, b"one")
    storage.write_atomic(target, b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["x.tar"]
    assert storage.read_bytes(target) == b"two"


def test_resume_state_requires_matching_digests(tmp_path):
    out = str(tmp_path)
    storage.mkdirs(storage.join(out, "shards"))
    storage.mkdirs(storage.join(out, "state"))
    storage.write_atomic(storage.join(out, "shards", "000001.tar"), b"tar")
    assert load_finished_state(out, 1, config_digest="c", input_digest="i") is None  # no state: unfinished
    state = {"version": 1, "config_digest": "c", "input_digest": "i", "rows": [], "rejects": []}
    storage.write_atomic(storage.join(out, "state", "000001.json"), json.dumps(state).encode())
    assert load_finished_state(out, 1, config_digest="c", input_digest="i") is not None
    assert load_finished_state(out, 1, config_digest="c2", input_digest="i") is None
    assert load_finished_state(out, 1, config_digest="c", input_digest="i2") is None


def test_outputs_files_and_accounting(tmp_path):
    s = [_sample("a"), _sample("b")]
    rej = Reject(record_id="f:3", stage="seeds", code="invalid_json")
    results = [
        ShardResult(0, tuple(x.row for x in s), (rej,), tuple(x.timing for x in s), 3, False, 100),
        ShardResult(1, (), (Reject(record_id="c", stage="tts", code="tts_failed"),), (), 1, True, 50),
    ]
    summary = write_outputs(
        results, str(tmp_path), resolved_config={"k": 1}, git_revision="abc", config_digest="d"
    )
    assert summary["accounting"] == {"seeds_in": 4, "samples_out": 2, "rejects": 2, "balanced": True}
    assert summary["stages"]["seeds"] == {"in": 4, "rejected": 1, "out": 3}
    assert summary["stages"]["tts"]["rejected"] == 1
    assert summary["reject_codes"] == {"seeds/invalid_json": 1, "tts/tts_failed": 1}
    assert summary["shards"]["skipped_on_resume"] == 1
    assert summary["timing_histograms"]["response_gap_s"]["n"] == 2
    table = pq.read_table(tmp_path / "manifest.parquet")
    assert table.column("key").to_pylist() == ["a", "b"]
    assert read_manifest(str(tmp_path / "manifest.parquet")) == [x.row for x in s]  # typed rows back
    lines = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["tts_failed", "invalid_json"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["accounting"] == summary["accounting"] and on_disk["git_revision"] == "abc"


def test_unbalanced_accounting_is_reported():
    res = [ShardResult(0, (), (), (), 5, False, 0)]
    assert (
        build_summary(res, resolved_config={}, git_revision="x", config_digest="d")["accounting"]["balanced"]
        is False
    )


def test_manifest_is_deterministic():
    rows = [_sample("a").row]
    assert manifest_bytes(rows) == manifest_bytes(rows)


def test_manifest_columns_are_the_rows_fields_in_order_and_fail_loudly(tmp_path):
    """manifest.parquet's columns and types come from ManifestRow; the published column list (order
    and Parquet types) is the contract readers rely on, so a change to the record shows here."""
    assert [(f.name, str(f.type)) for f in MANIFEST_SCHEMA] == [
        ("key", "string"),
        ("shard", "string"),
        ("seed_id", "string"),
        ("family", "string"),
        ("family_substitution", "string"),
        ("lang", "string"),
        ("duration_s", "double"),
        ("user_speech_s", "double"),
        ("assistant_speech_s", "double"),
        ("n_chunks", "int64"),
        ("n_utterances", "int64"),
        ("n_actions", "int64"),
        ("n_tool_calls", "int64"),
        ("max_action_tokens", "int64"),
        ("user_speaker", "string"),
        ("assistant_speaker", "string"),
        ("tokenizer", "string"),
        ("layouts", "string"),
        ("action_channel", "string"),
        ("prompt_hashes", "string"),
        ("bytes", "int64"),
        ("cognition", "string"),
        ("chains", "string"),
    ]
    assert list(ManifestRow.model_fields) == MANIFEST_SCHEMA.names
    with pytest.raises(ValidationError, match="chains"):  # a row without a column is not written
        ManifestRow(**manifest_row("a").model_dump(exclude={"chains"}))
    # A manifest missing a column (an older or foreign file) is refused, not read as nulls.
    table = pq.read_table(pyio.BytesIO(manifest_bytes([manifest_row("a")]))).drop_columns(["cognition"])
    pq.write_table(table, tmp_path / "old.parquet")
    with pytest.raises(ValueError, match=r"missing \['cognition'\]"):
        read_manifest(str(tmp_path / "old.parquet"))
