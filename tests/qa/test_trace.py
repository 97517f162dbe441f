"""``duplexloom trace SHARDS KEY``: the stored SPEC 15 trace of one sample, optionally coloured."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from duplexloom.qa.trace import color_line, split_line
from duplexloom.qa.trace_cli import main as trace_main
from duplexloom.schemas.tokens import ACTION_END, ASSISTANT_AUDIO_END, TOOLCALL_BEGIN


def _stored_trace(shard: Path, key: str) -> str:
    with tarfile.open(shard) as tar:
        return tar.extractfile(f"{key}.trace.txt").read().decode()


def test_bare_trace_equals_stored_member(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = dataset_dir / "shards"
    assert trace_main([f"{shards}/*.tar", "toolcall_0000", "--no-times"]) == 0
    out = capsys.readouterr().out
    assert out == _stored_trace(shards / "000000.tar", "toolcall_0000")
    assert TOOLCALL_BEGIN in out and all(line.endswith(ACTION_END) for line in out.splitlines())


def test_times_and_colour(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_main([str(dataset_dir / "shards"), "dialogue_0000", "--color", "always"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["1", "0.16s"]  # chunk index and start time of chunk 1
    assert "\x1b[1;33m" in lines[-1]  # the action channel is highlighted


def test_unknown_key(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_main([str(dataset_dir / "shards"), "nope"]) == 1
    assert "no sample 'nope'" in capsys.readouterr().err


def test_split_and_colour_keep_text() -> None:
    line = f"<|user_audio_begin|> U U <|user_audio_end|> x {ASSISTANT_AUDIO_END} hi<response> {ACTION_END}"
    head, tail = split_line(line)
    assert head.endswith(ASSISTANT_AUDIO_END) and tail == f" hi<response> {ACTION_END}"
    plain = color_line(line)
    for code in ("\x1b[2m", "\x1b[1;33m", "\x1b[36m", "\x1b[1;35m", "\x1b[0m"):
        plain = plain.replace(code, "")
    assert plain == line
