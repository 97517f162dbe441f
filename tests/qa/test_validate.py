"""``duplexloom validate`` passes a good shard and catches defects planted in copies of it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from duplexloom.qa.validate_cli import main as validate_main
from duplexloom.schemas.tokens import ACTION_END
from duplexloom.timeline.sample_codec import chunks_from_json, meta_from_json
from duplexloom.timeline.tokenizer import load_tokenizer
from tests.qa.fixtures import read_tar, write_tar

KEY = "toolcall_0000"


def _run(capsys: pytest.CaptureFixture[str], spec: str) -> tuple[int, list[str]]:
    rc = validate_main([spec])
    out = capsys.readouterr().out
    return rc, [line for line in out.splitlines() if line.strip()]


def test_good_shards_validate_clean(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = _run(capsys, str(dataset_dir / "shards"))
    assert lines == []
    assert rc == 0


def test_glob_and_brace_specs_find_both_shards(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for spec in (
        f"{dataset_dir}/shards/*.tar",
        f"{dataset_dir}/shards/{{000000..000001}}.tar",
        str(dataset_dir),
    ):
        assert validate_main([spec]) == 0
        assert "2 shard(s), 3 sample(s), 0 violation(s)" in capsys.readouterr().err


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert validate_main([str(tmp_path / "nothing" / "*.tar")]) == 2


def _plant(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """Copy ``src`` with the members of sample ``KEY`` changed by ``edit`` (suffix -> bytes)."""
    entries = read_tar(src.read_bytes())
    members = {n.split(".", 1)[1]: d for n, d in entries if n.startswith(KEY + ".")}
    edit(members)
    others = [(n, d) for n, d in entries if not n.startswith(KEY + ".")]
    mine = [(f"{KEY}.{suffix}", d) for suffix, d in members.items()]
    dst.write_bytes(write_tar(sorted(others + mine)))
    return dst


def _edit_json(members: dict[str, bytes], name: str, fn: Callable[[object], None]) -> None:
    """Edit a member's records as plain JSON (the member itself is type-stable JSON)."""
    if name == "json":
        obj = meta_from_json(json.loads(members[name])).model_dump(mode="json")
    else:
        obj = [c.model_dump(mode="json") for c in chunks_from_json(json.loads(members[name]))]
    fn(obj)
    members[name] = json.dumps(obj, ensure_ascii=False).encode()  # plain JSON still reads back


def _chunks_with(members: dict[str, bytes], needle: str) -> list[int]:
    return [c.chunk for c in chunks_from_json(json.loads(members["chunks.json"])) if needle in c.action_text]


def _violations(lines: list[str], code: str) -> list[tuple[str, int | None]]:
    """(key, chunk) of each printed violation with ``code``."""
    out = []
    for line in lines:
        m = re.match(r"^.*?:(\w+)(?: chunk (\d+))?: (\w+): ", line)
        assert m, f"unparsable violation line {line!r}"
        if m.group(3) == code:
            out.append((m.group(1), int(m.group(2)) if m.group(2) else None))
    return out


@pytest.fixture()
def shard(dataset_dir: Path) -> Path:
    return dataset_dir / "shards" / "000000.tar"


def test_over_budget_chunk(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = load_tokenizer(None)
    target: list[int] = []

    def edit(members: dict[str, bytes]) -> None:
        def grow(chunks: object) -> None:
            c = next(c for c in chunks if c["pieces"])  # the first chunk that carries action text
            extra = " and a great many more words than one chunk of the action channel can hold"
            c["pieces"][-1]["text"] += extra
            c["action_text"] += extra
            c["action_tokens"] = tok.count(c["action_text"])  # honest count: only the budget is broken
            target.append(c["chunk"])
            assert c["action_tokens"] > 10

        _edit_json(members, "chunks.json", grow)

    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", edit)))
    assert rc == 1
    assert (KEY, target[0]) in _violations(lines, "over_budget")


def test_action_before_its_trigger(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first_chunk: list[int] = []

    def edit(members: dict[str, bytes]) -> None:
        first_chunk.append(
            _chunks_with(members, "increase_car_set")[0] - 1
        )  # the block opens a chunk earlier

        def delay(meta: object) -> None:
            a = next(a for a in meta["timeline"]["actions"] if a["name"] == "increase_car_setting")
            a["offset_samples"] += 8 * 2560  # trigger 8 chunks later than where its pieces already are

        _edit_json(members, "json", delay)

    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", edit)))
    assert rc == 1
    found = _violations(lines, "starts_before_trigger")
    assert found and found[0][0] == KEY
    assert found[0][1] is not None and found[0][1] <= first_chunk[0] + 1


def test_broken_toolcall_json(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where: list[int] = []

    def edit(members: dict[str, bytes]) -> None:
        def corrupt(chunks: object) -> None:
            c = next(c for c in chunks if '"function":' in c["action_text"])
            where.append(c["chunk"])
            c["action_text"] = c["action_text"].replace('"function":', '"function" ', 1)
            for p in c["pieces"]:
                p["text"] = p["text"].replace('"function":', '"function" ', 1)

        _edit_json(members, "chunks.json", corrupt)
        members["trace.txt"] = members["trace.txt"].replace(b'"function":', b'"function" ', 1)

    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", edit)))
    assert rc == 1
    found = _violations(lines, "toolcall_json")
    assert found and all(k == KEY for k, _ in found)
    # The block opens in the chunk before the corrupted one or in it; each report names a chunk.
    assert all(c is not None and where[0] - 1 <= c <= where[0] for _, c in found)


def test_marker_inside_text(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(members: dict[str, bytes]) -> None:
        def smuggle(meta: object) -> None:
            u = meta["timeline"]["utterances"][0]
            u["text"] = u["text"].replace("jazz", "jazz" + ACTION_END)

        _edit_json(members, "json", smuggle)

    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", edit)))
    assert rc == 1
    found = _violations(lines, "marker_in_text")
    assert found and found[0][0] == KEY and found[0][1] is not None


def test_missing_member(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", lambda m: m.pop("trace.txt"))))
    assert rc == 1
    assert any(f"{KEY}.trace.txt is missing" in line for line in lines)
    assert _violations(lines, "missing_member") == [(KEY, None)]
    # The other sample of the shard is still validated, and is clean.
    assert not any("interrupt_0000" in line for line in lines)


def test_audio_length_and_chunk_count(
    shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(members: dict[str, bytes]) -> None:
        _edit_json(members, "chunks.json", lambda chunks: chunks.pop())
        members["trace.txt"] = b"".join(members["trace.txt"].splitlines(keepends=True)[:-1])

    rc, lines = _run(capsys, str(_plant(shard, tmp_path / "bad.tar", edit)))
    assert rc == 1
    assert _violations(lines, "chunk_count")
    assert len(_violations(lines, "audio_length")) == 2  # both tracks are now one chunk too long
