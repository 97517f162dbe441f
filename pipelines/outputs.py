"""Stage ``outputs``: the files beside the shards (SPEC section 13).

Input: every shard's :class:`~.shards.ShardResult` (one list, so the files are written once, sorted).
Output, through FileSystems with atomic renames:
* ``manifest.parquet`` — one :class:`~duplexloom.schemas.manifest.ManifestRow` per sample, sorted
  by key; its columns and their Parquet types are derived from the record (:data:`MANIFEST_SCHEMA`),
  and :func:`read_manifest` reads it back into records (a missing or extra column is an error);
* ``rejects.jsonl`` — one :class:`Reject` per line (record id, stage, code, detail), sorted;
* ``summary.json`` — counts per stage, family and reject code, per family the samples carrying
  cognition and chains (and why the others do not), audio hours, timing histograms, the
  resolved config, package versions, prompt hashes, git revision, and the accounting check
  ``seeds_in == samples_out + rejects``, and the count and share of transient rejects.
Then the folder is made to hold exactly this run (README, "Output folder"): shard tars and state
files of shards this run did not write or keep (a run with more shards or other seeds before it),
temporary files of interrupted writes (``*.tmp-*``) and the spool ``_work/`` are deleted. Only
names this project writes are touched (``shards/%06d.tar``, ``state/%06d.json``, ``*.tmp-*``).
No reject codes.
"""

from __future__ import annotations

import json
import os
import re
import types
from collections import Counter, defaultdict
from importlib import metadata
from io import BytesIO
from typing import Any, Union, get_args, get_origin

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from duplexloom import storage as io
from duplexloom.pipelines.routing import INTERNAL_ERROR
from duplexloom.pipelines.spool import delete_tree, work_dir
from duplexloom.qa.semantic import BINS as SEMANTIC_BINS
from duplexloom.qa.semantic import CHECKS as SEMANTIC_CHECKS
from duplexloom.qa.semantic import REFERENCE as SEMANTIC_REFERENCE
from duplexloom.schemas import Reject
from duplexloom.schemas.manifest import ManifestRow
from duplexloom.schemas.reject import is_transient
from duplexloom.timeline.families import FAMILY_CHANNELS, action_channel
from duplexloom.timeline.timing import histograms

STAGE_ORDER = ("seeds", "annotate", "dedup", "plan", "tts", "align", "build", "serialize", "semantic")

_ARROW_TYPES: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64()}


def _arrow_type(annotation: Any) -> pa.DataType:
    """A ManifestRow field's Parquet type; ``X | None`` is ``X`` (every column may hold nulls)."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return _ARROW_TYPES[annotation]


# Column order and types of manifest.parquet: the record's fields, in order.
MANIFEST_SCHEMA = pa.schema(
    [(name, _arrow_type(f.annotation)) for name, f in ManifestRow.model_fields.items()]
)

VERSION_PACKAGES = (
    "duplexloom",
    "apache-beam",
    "numpy",
    "pydantic",
    "pyarrow",
    "soundfile",
    "torch",
    "torchaudio",
    "ctc-segmentation",
    "tokenizers",
    "openai",
)


def package_versions() -> dict[str, str]:
    out = {}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def manifest_bytes(rows: list[ManifestRow]) -> bytes:
    cols = {name: [getattr(r, name) for r in rows] for name in MANIFEST_SCHEMA.names}
    table = pa.table(cols, schema=MANIFEST_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def read_manifest(path: str) -> list[ManifestRow]:
    """A run's ``manifest.parquet`` as records; raises ``ValueError`` when its columns are not
    exactly :data:`MANIFEST_SCHEMA`'s (a missing column is never read as nulls)."""
    table = pq.read_table(BytesIO(io.read_bytes(path)))
    if table.schema.names != MANIFEST_SCHEMA.names:
        missing = [c for c in MANIFEST_SCHEMA.names if c not in table.schema.names]
        extra = [c for c in table.schema.names if c not in MANIFEST_SCHEMA.names]
        raise ValueError(f"{path}: manifest columns differ: missing {missing}, unexpected {extra}")
    return [ManifestRow.model_validate(r) for r in table.to_pylist()]


def rejects_bytes(rejects: list[Reject]) -> bytes:
    lines = [
        json.dumps(r.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
        for r in sorted(rejects, key=lambda r: (r.record_id, r.stage, r.code))
    ]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def histogram(values: list[float], edges: list[float]) -> dict[str, Any]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        i = sum(1 for e in edges if v >= e)
        counts[i] += 1
    labels = [f"<{edges[0]:g}"] + [f"[{a:g},{b:g})" for a, b in zip(edges, edges[1:], strict=False)]
    labels.append(f">={edges[-1]:g}")
    return {"bins": labels, "counts": counts, "n": len(values)}


def timing_histograms(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Histograms over the numeric per-sample timing stats (seconds)."""
    values: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        for k, v in t.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                values[k].append(float(v))
            elif isinstance(v, list):
                values[k].extend(float(x) for x in v if isinstance(x, int | float))
    out = {}
    for k in sorted(values):
        vs = values[k]
        out[k] = {
            "mean": round(sum(vs) / len(vs), 4) if vs else None,
            "min": round(min(vs), 4) if vs else None,
            "max": round(max(vs), 4) if vs else None,
            **histogram(vs, [0.0, 0.16, 0.32, 0.5, 0.64, 1.0, 2.0, 5.0, 10.0, 30.0]),
        }
    return out


def semantic_summary(timings: list[dict[str, Any]], rejects: list[Reject]) -> dict[str, Any]:
    """SPEC 17 in the summary: per check, how many samples it scored and the pass rate (a rejected
    sample counts against every check it failed), and the audio-measured timings beside their
    reference values."""
    applied: Counter = Counter()
    passed: Counter = Counter()
    measured: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        sem = t.get("semantic") or {}
        for check, ok in sem.get("checks", {}).items():
            applied[check] += 1
            passed[check] += bool(ok)
        for name, vals in sem.get("measured", {}).items():
            measured[name].extend(vals)
    rejected = [r for r in rejects if r.stage == "semantic"]
    for r in rejected:
        for check in (r.extra or {}).get("failed_checks", []):
            applied[check] += 1
    scored = len(timings) + len(rejected)
    return {
        "scored": scored,
        "rejected": len(rejected),
        "reject_share": round(len(rejected) / scored, 4) if scored else 0.0,
        "checks": {
            c: {"n": applied[c], "pass_rate": round(passed[c] / applied[c], 4) if applied[c] else None}
            for c in SEMANTIC_CHECKS
        },
        "measured": {
            name: {
                **histograms(vals, SEMANTIC_BINS.get(name, 20)),
                "std": round(float(np.std(vals)), 6) if vals else None,
                "reference": SEMANTIC_REFERENCE.get(name, ""),
            }
            for name, vals in sorted(measured.items())
        },
    }


def drawn_histograms(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """SPEC 12: a histogram of every value drawn from a distribution, by name (seconds, fractions)."""
    values: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        for name, vals in (t.get("drawn") or {}).items():
            values[name].extend(vals)
    return {name: histograms(vals, 20) for name, vals in sorted(values.items())}


def action_channel_table(resolved_config: dict[str, Any]) -> dict[str, Any]:
    """family -> what its action channel carried in this run, and whether the run overrode SPEC 11."""
    overrides = (resolved_config.get("serializer") or {}).get("channels") or {}
    return {
        fam: {"channel": list(action_channel(fam, overrides)), "override": fam in overrides}
        for fam in FAMILY_CHANNELS
    }


def cognition_counts(rows: list[ManifestRow]) -> dict[str, dict[str, dict[str, int]]]:
    """Per family: how many samples carry cognition and chains, and why the others do not."""
    out: dict[str, dict[str, Counter]] = defaultdict(lambda: {"cognition": Counter(), "chains": Counter()})
    for r in rows:
        for field in ("cognition", "chains"):
            out[r.family][field][getattr(r, field)] += 1
    return {f: {k: dict(sorted(v.items())) for k, v in d.items()} for f, d in sorted(out.items())}


def build_summary(
    results: list,
    *,
    resolved_config: dict[str, Any],
    git_revision: str,
    config_digest: str,
    align_quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rows = [r for res in results for r in res.rows]
    rejects = [r for res in results for r in res.rejects]
    timings = [t for res in results for t in res.timings]
    seeds_in = sum(res.n_lines for res in results)
    by_stage = Counter(r.stage for r in rejects)
    transient = sum(1 for r in rejects if is_transient(r.code))
    stages: dict[str, dict[str, int]] = {}
    n_in = seeds_in
    for st in STAGE_ORDER:
        rej = by_stage.get(st, 0)
        stages[st] = {"in": n_in, "rejected": rej, "out": n_in - rej}
        n_in -= rej
    for st in sorted(set(by_stage) - set(STAGE_ORDER)):
        stages[st] = {"rejected": by_stage[st]}
    prompt_hashes: dict[str, str] = {}
    for r in rows:
        prompt_hashes.update(json.loads(r.prompt_hashes or "{}"))
    duration_s = sum(r.duration_s for r in rows)
    return {
        "accounting": {
            "seeds_in": seeds_in,
            "samples_out": len(rows),
            "rejects": len(rejects),
            "balanced": seeds_in == len(rows) + len(rejects),
        },
        "internal_errors": sum(1 for r in rejects if r.code == INTERNAL_ERROR),
        "transient_rejects": transient,
        "transient_share": round(transient / seeds_in, 6) if seeds_in else 0.0,
        "stages": stages,
        "families": dict(sorted(Counter(r.family for r in rows).items())),
        "family_substitutions": dict(
            sorted(Counter(r.family_substitution for r in rows if r.family_substitution).items())
        ),
        "cognition": cognition_counts(rows),
        "langs": dict(sorted(Counter(r.lang for r in rows).items())),
        "reject_codes": dict(sorted(Counter(f"{r.stage}/{r.code}" for r in rejects).items())),
        "audio_hours": {
            "sessions": round(duration_s / 3600, 6),
            "both_tracks": round(2 * duration_s / 3600, 6),
            "user_speech": round(sum(r.user_speech_s for r in rows) / 3600, 6),
            "assistant_speech": round(sum(r.assistant_speech_s for r in rows) / 3600, 6),
        },
        "shards": {
            "count": len(results),
            "skipped_on_resume": sum(1 for r in results if r.skipped),
            "bytes": sum(r.tar_bytes for r in results),
        },
        "timing_histograms": timing_histograms(timings),
        "action_channel": action_channel_table(resolved_config),
        "semantic": semantic_summary(timings, rejects),
        "drawn_histograms": drawn_histograms(timings),
        # Alignment quality scores of the utterances this run aligned (pipelines/align.py).
        "align_quality": align_quality or {},
        "prompt_hashes": dict(sorted(prompt_hashes.items())),
        "config": resolved_config,
        "config_digest": config_digest,
        "versions": package_versions(),
        "git_revision": git_revision,
    }


def write_outputs(
    results: list,
    out_dir: str,
    *,
    resolved_config: dict[str, Any],
    git_revision: str,
    config_digest: str,
    align_quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    results = sorted(results, key=lambda r: r.shard)
    rows = sorted((r for res in results for r in res.rows), key=lambda r: r.key)
    rejects = [r for res in results for r in res.rejects]
    io.write_atomic(io.join(out_dir, "manifest.parquet"), manifest_bytes(rows))
    io.write_atomic(io.join(out_dir, "rejects.jsonl"), rejects_bytes(rejects))
    summary = build_summary(
        results,
        resolved_config=resolved_config,
        git_revision=git_revision,
        config_digest=config_digest,
        align_quality=align_quality,
    )
    io.write_atomic(
        io.join(out_dir, "summary.json"),
        (json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    )
    # Every shard is written and has removed its own spool folder; what is left (a crashed
    # earlier run's leftovers) goes too.
    delete_tree(work_dir(out_dir))
    remove_stale(out_dir, {r.shard for r in results})
    return summary


_SHARD_FILE = re.compile(r"(\d{6})\.(tar|json)")
TMP_MARK = ".tmp-"  # io.open_atomic's temporary names: <target>.tmp-<uuid hex>
CACHE_SUBDIRS = ("tts", "align", "flac")  # the caches' folders under output.cache_dir


def stale_files(out_dir: str, keep_shards: set[int]) -> list[str]:
    """Files under ``out_dir`` that a finished run must not leave: shards and states of other
    shards than ``keep_shards``, and temporary files of interrupted atomic writes."""
    found: list[str] = []
    for pattern, sub in (("*", ""), ("shards/*", "shards"), ("state/*", "state")):
        for path in io.match(io.join(out_dir, pattern)):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if TMP_MARK in name:
                found.append(path)
                continue
            m = _SHARD_FILE.fullmatch(name)
            wanted = {"shards": "tar", "state": "json"}.get(sub)
            if m and m.group(2) == wanted and int(m.group(1)) not in keep_shards:
                found.append(path)
    return sorted(found)


def remove_stale(out_dir: str, keep_shards: set[int]) -> list[str]:
    stale = stale_files(out_dir, keep_shards)
    if stale:
        io.delete(stale)
    return stale


def remove_cache_leftovers(cache_dir: str, older_than: float) -> int:
    """Delete the temporary files (``*.tmp``) that killed writers left in a local cache, when last
    modified before ``older_than`` (epoch seconds: this run's start, so a concurrent run's write in
    flight is left alone). Returns how many were removed."""
    n = 0
    if "://" in cache_dir:
        return 0
    # Only the caches' own folders: output.cache_dir may be a shared directory such as /tmp.
    for root, _dirs, files in (w for sub in CACHE_SUBDIRS for w in os.walk(os.path.join(cache_dir, sub))):
        for name in files:
            if name.endswith(".tmp") or TMP_MARK in name:
                path = os.path.join(root, name)
                try:
                    if os.stat(path).st_mtime < older_than:
                        os.unlink(path)
                        n += 1
                except FileNotFoundError:
                    pass  # its writer renamed or removed it meanwhile
    return n
