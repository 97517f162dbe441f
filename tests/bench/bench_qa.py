"""QA tool speed on the test dataset (3 espeak sessions, ~35 s of audio): validate and report
seconds per sample. Target: validate >= 20 samples/s, report <= 2 s per sampled session (2 cores)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from duplexloom.qa.report import write_report
from duplexloom.qa.validate import validate_shards
from duplexloom.shardio import expand_shards
from tests.qa.fixtures import write_dataset


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_dataset(Path(tmp) / "ds")
        paths = expand_shards(str(shards))
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            result = validate_shards(paths)
        dt = (time.perf_counter() - t0) / reps
        rate = result.samples / dt
        print(
            f"validate: {result.samples} samples in {dt:.3f} s = {rate:.1f} samples/s (target >= 20), "
            f"{len(result.violations)} violations"
        )
        t0 = time.perf_counter()
        write_report(str(shards), str(Path(tmp) / "report"), n=20, seed=0)
        dt = time.perf_counter() - t0
        print(
            f"report: {result.samples} sessions in {dt:.2f} s = {dt / result.samples:.2f} s/session (target <= 2)"
        )


if __name__ == "__main__":
    main()
