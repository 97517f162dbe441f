"""Stage ``write``: WebDataset shards, written whole or not at all, and the per-shard resume state.

Input: per shard (``shard = int(sha256(key)[:8], 16) % num_shards``, :mod:`.keys`) its
:class:`~.seeds.ShardPlan`, its encoded samples and its rejects. Output: ``shards/%06d.tar``
(members sorted, fixed mtime: :func:`duplexloom.timeline.sample_codec.write_shard_blocks`) and
``state/%06d.json``; then the shard's manifest rows and rejects flow on to the run's outputs.
Samples arrive as references into the spool (:mod:`.spool`), each its finished tar blocks; the tar
is streamed to its file one sample at a time, by copying, so writing a shard needs one sample's memory, whatever the shard's size. After
the state is written the shard's spool folder is removed; a retried bundle that finds it gone
takes its result from the state the first attempt wrote.

Resume stays correct although a shard's bytes depend on all of its samples:
1. a shard's tar is written to a temporary name and renamed, and its state file (config digest,
   input digest, manifest rows, rejects) is written the same way *after* it, so a state file exists
   only for a shard written whole;
2. the state's input digest covers every seed line that maps to the shard (location + sha256 of
   the line) and its config digest covers every setting that changes bytes, so a rerun skips a
   shard only when it would produce the very same bytes; anything else recomputes the shard (and
   the caches make that cheap) and overwrites it;
3. with a fixed shard count the assignment of a key to a shard never changes between runs.
No reject codes (rejects arrive here from earlier stages).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from duplexloom import storage
from duplexloom.pipelines.keys import shard_name
from duplexloom.pipelines.spool import delete_tree, get_blocks, shard_dir
from duplexloom.pipelines.transport import prepare_worker
from duplexloom.schemas import Reject
from duplexloom.schemas.manifest import ManifestRow
from duplexloom.timeline.sample_codec import (
    sample_tar_blocks,
    shard_order,
    shard_tar_bytes,
    write_shard_blocks,
)

STAGE = "write"
STATE_VERSION = 1
log = logging.getLogger("duplexloom.pipelines")


@dataclass(frozen=True)
class EncodedSample:
    """One finished sample: its shard, key, tar members and its manifest row."""

    shard: int
    key: str
    members: dict[str, bytes]
    row: ManifestRow
    timing: dict[str, Any] = field(default_factory=dict)  # timing_stats() of its timeline
    ref: str | None = None  # spooled members (pipelines/spool.py): ``members`` is then empty


@dataclass(frozen=True)
class ShardResult:
    shard: int
    rows: tuple[ManifestRow, ...]
    rejects: tuple[Reject, ...]
    timings: tuple[dict[str, Any], ...]
    n_lines: int
    skipped: bool
    tar_bytes: int


def shard_path(out_dir: str, shard: int) -> str:
    return storage.join(out_dir, "shards", shard_name(shard))


def state_path(out_dir: str, shard: int) -> str:
    return storage.join(out_dir, "state", f"{shard:06d}.json")


def load_finished_state(out_dir: str, shard: int, *, config_digest: str, input_digest: str) -> dict | None:
    """The state of a shard written whole by a run with the same config and inputs, else None."""
    sp, tp = state_path(out_dir, shard), shard_path(out_dir, shard)
    if not (storage.exists(sp) and storage.exists(tp)):
        return None
    state = json.loads(storage.read_bytes(sp))
    if (
        state.get("version") != STATE_VERSION
        or state.get("config_digest") != config_digest
        or state.get("input_digest") != input_digest
    ):
        return None
    return state


def shard_bytes(samples: list[EncodedSample]) -> bytes:
    return shard_tar_bytes((s.key, s.members) for s in samples)


def sample_blocks(s: EncodedSample) -> bytes:
    """The sample's tar blocks: encoded from the record's members, or read back from the spool."""
    if s.ref is None:
        return sample_tar_blocks(s.key, s.members)
    return get_blocks(s.ref)


def write_shard_file(path: str, samples: list[EncodedSample]) -> int:
    """Stream ``samples`` into the shard tar at ``path`` (atomically), reading one spooled sample at
    a time; returns the tar's size in bytes."""
    ordered = sorted(samples, key=lambda s: shard_order(s.key))
    with storage.open_atomic(path) as f:
        return write_shard_blocks(f, ((s.key, sample_blocks(s)) for s in ordered))


class WriteShard(beam.DoFn):
    """(shard, {plans, samples, rejects}) -> :class:`ShardResult` (writing the shard when needed)."""

    def __init__(self, out_dir: str, config_digest: str, num_shards: int, progress: bool) -> None:
        self.out_dir = out_dir
        self.config_digest = config_digest
        self.num_shards = num_shards
        self.progress = progress
        self.written = Metrics.counter(STAGE, "shards_written")
        self.n_samples = Metrics.counter(STAGE, "samples_written")

    def setup(self) -> None:
        prepare_worker()
        storage.mkdirs(storage.join(self.out_dir, "shards"))
        storage.mkdirs(storage.join(self.out_dir, "state"))

    def process(self, kv):
        shard, grouped = kv
        plans = list(grouped["plans"])
        if len(plans) != 1:
            raise RuntimeError(f"shard {shard}: expected one plan, got {len(plans)}")
        plan = plans[0]
        samples = sorted((s.open() for s in grouped["samples"]), key=lambda s: s.key)  # sealed: run.py
        rejects = sorted(grouped["rejects"], key=lambda r: (r.record_id, r.stage, r.code))
        if plan.skip:
            yield self.from_state(shard, plan.state, plan.n_lines)
            return
        keys = [s.key for s in samples]
        if len(set(keys)) != len(keys):
            raise RuntimeError(f"shard {shard}: duplicate sample keys")
        try:
            n_bytes = write_shard_file(shard_path(self.out_dir, shard), samples)
        except OSError:  # FileNotFoundError locally, BeamIOError on object stores
            # A retried bundle whose first attempt wrote the shard and removed its spool: the state
            # file says so, and it is what this attempt would have written.
            st = load_finished_state(
                self.out_dir, shard, config_digest=self.config_digest, input_digest=plan.input_digest
            )
            if st is None:
                raise
            yield self.from_state(shard, st, plan.n_lines, skipped=False)
            return
        rows = tuple(s.row for s in samples)
        timings = tuple(s.timing for s in samples)
        state = {
            "version": STATE_VERSION,
            "shard": shard,
            "config_digest": self.config_digest,
            "input_digest": plan.input_digest,
            "n_lines": plan.n_lines,
            "tar_bytes": n_bytes,
            "rows": [r.model_dump(mode="json") for r in rows],
            "rejects": [r.model_dump(mode="json") for r in rejects],
            "timings": list(timings),
        }
        # Written after the tar: its presence is what marks the shard finished.
        storage.write_atomic(
            state_path(self.out_dir, shard),
            json.dumps(state, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8"),
        )
        self.written.inc()
        self.n_samples.inc(len(samples))
        if self.progress:
            log.info(
                "[write] shard %s: %d samples, %d rejects, %.1f MB",
                shard_name(shard),
                len(samples),
                len(rejects),
                n_bytes / 1e6,
            )
        # The shard and its state are written: its spooled clips and samples are no longer needed.
        delete_tree(shard_dir(self.out_dir, shard))
        yield ShardResult(shard, rows, tuple(rejects), timings, plan.n_lines, False, n_bytes)

    @staticmethod
    def from_state(shard: int, st: dict, n_lines: int, skipped: bool = True) -> ShardResult:
        return ShardResult(
            shard,
            tuple(ManifestRow.model_validate(r) for r in st["rows"]),
            tuple(Reject.model_validate(r) for r in st["rejects"]),
            tuple(st.get("timings", [])),
            n_lines,
            skipped,
            int(st.get("tar_bytes", 0)),
        )
