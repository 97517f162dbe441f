"""Chaos: kill -9 the whole run (its process group: Beam, the espeak zygote) at 5 random moments,
resume each time; the final shards, manifest and rejects are byte-identical to an uninterrupted
run's, and no temporary file or spool folder is left anywhere under the output folder."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duplexloom.pipelines.run import DEFAULT_SEEDS

PICK = ("en-qa-00", "zh-qa-03", "en-tool-01", "zh-dlg-01")
BAD = Path(DEFAULT_SEEDS).with_name("bad_seeds.jsonl")


def command(out: Path, seeds: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "duplexloom.cli",
        "run",
        "--out",
        str(out),
        "--seeds",
        str(seeds),
        "--set",
        "shards.num_shards=3",
        "--set",
        "qa_report=false",
        "--quiet",
    ]


def start(out: Path, seeds: Path) -> subprocess.Popen:
    # A session of its own, so that one killpg reaches every process of the run.
    return subprocess.Popen(
        command(out, seeds), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def finish(out: Path, seeds: Path) -> float:
    t0 = time.monotonic()
    proc = start(out, seeds)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    return time.monotonic() - t0


def outputs(out: Path) -> dict[str, bytes]:
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "shards").iterdir())}
    for name in ("manifest.parquet", "rejects.jsonl"):
        files[name] = (out / name).read_bytes()
    return files


@pytest.mark.slow
def test_kill_9_at_five_random_points_then_resume_gives_the_same_bytes(tmp_path):
    lines = [line for line in open(DEFAULT_SEEDS, encoding="utf-8") if json.loads(line)["id"] in PICK]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(lines) + BAD.read_text(encoding="utf-8"), encoding="utf-8")
    reference = tmp_path / "reference"
    duration = finish(reference, seeds)  # with its own cache (<out>/cache)

    out = tmp_path / "chaos"
    rng = random.Random(17)
    for _ in range(5):
        proc = start(out, seeds)
        time.sleep(rng.uniform(0.5, duration))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finish(out, seeds)

    assert outputs(out) == outputs(reference)
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or p.name == "_work"]
    assert not leftovers, leftovers
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accounting"]["balanced"] and summary["internal_errors"] == 0
