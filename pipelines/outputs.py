"""Stage ``outputs``: the files beside the shards (SPEC section 13).

Input: every shard's :class:`~.shards.ShardResult` (one list, so the files are written once, sorted).
Output, through FileSystems with atomic renames:
* ``manifest.parquet`` — one row per sample (:data:`MANIFEST_COLUMNS`), sorted by key;
* ``rejects.jsonl`` — one :class:`Reject` per line (record id, stage, code, detail), sorted;
* ``summary.json`` — counts per stage, family and reject code, audio hours, timing histograms, the
  resolved config, package versions, prompt hashes, git revision, and the accounting check
  ``seeds_in == samples_out + rejects``.
No reject codes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from importlib import metadata
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from duplexloom.pipelines import io
from duplexloom.pipelines.routing import INTERNAL_ERROR
from duplexloom.pipelines.spool import delete_tree, work_dir
from duplexloom.schemas import Reject

STAGE_ORDER = ("seeds", "annotate", "dedup", "plan", "tts", "align", "build", "serialize")

MANIFEST_COLUMNS: dict[str, pa.DataType] = {
    "key": pa.string(),
    "shard": pa.string(),
    "seed_id": pa.string(),
    "family": pa.string(),
    "family_substitution": pa.string(),  # "drawn->served" when the annotator could not serve the draw
    "lang": pa.string(),
    "duration_s": pa.float64(),
    "user_speech_s": pa.float64(),
    "assistant_speech_s": pa.float64(),
    "n_chunks": pa.int64(),
    "n_utterances": pa.int64(),
    "n_actions": pa.int64(),
    "n_tool_calls": pa.int64(),
    "max_action_tokens": pa.int64(),
    "user_speaker": pa.string(),
    "assistant_speaker": pa.string(),
    "tokenizer": pa.string(),
    "layouts": pa.string(),
    "prompt_hashes": pa.string(),  # JSON object, template name -> sha256
    "bytes": pa.int64(),
}

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


def manifest_bytes(rows: list[dict[str, Any]]) -> bytes:
    cols = {name: [r.get(name) for r in rows] for name in MANIFEST_COLUMNS}
    table = pa.table(cols, schema=pa.schema(list(MANIFEST_COLUMNS.items())))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


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


def build_summary(
    results: list, *, resolved_config: dict[str, Any], git_revision: str, config_digest: str
) -> dict[str, Any]:
    rows = [r for res in results for r in res.rows]
    rejects = [r for res in results for r in res.rejects]
    timings = [t for res in results for t in res.timings]
    seeds_in = sum(res.n_lines for res in results)
    by_stage = Counter(r.stage for r in rejects)
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
        prompt_hashes.update(json.loads(r.get("prompt_hashes") or "{}"))
    duration_s = sum(r["duration_s"] for r in rows)
    return {
        "accounting": {
            "seeds_in": seeds_in,
            "samples_out": len(rows),
            "rejects": len(rejects),
            "balanced": seeds_in == len(rows) + len(rejects),
        },
        "internal_errors": sum(1 for r in rejects if r.code == INTERNAL_ERROR),
        "stages": stages,
        "families": dict(sorted(Counter(r["family"] for r in rows).items())),
        "family_substitutions": dict(
            sorted(Counter(r["family_substitution"] for r in rows if r.get("family_substitution")).items())
        ),
        "langs": dict(sorted(Counter(r["lang"] for r in rows).items())),
        "reject_codes": dict(sorted(Counter(f"{r.stage}/{r.code}" for r in rejects).items())),
        "audio_hours": {
            "sessions": round(duration_s / 3600, 6),
            "both_tracks": round(2 * duration_s / 3600, 6),
            "user_speech": round(sum(r["user_speech_s"] for r in rows) / 3600, 6),
            "assistant_speech": round(sum(r["assistant_speech_s"] for r in rows) / 3600, 6),
        },
        "shards": {
            "count": len(results),
            "skipped_on_resume": sum(1 for r in results if r.skipped),
            "bytes": sum(r.tar_bytes for r in results),
        },
        "timing_histograms": timing_histograms(timings),
        "prompt_hashes": dict(sorted(prompt_hashes.items())),
        "config": resolved_config,
        "config_digest": config_digest,
        "versions": package_versions(),
        "git_revision": git_revision,
    }


def write_outputs(
    results: list, out_dir: str, *, resolved_config: dict[str, Any], git_revision: str, config_digest: str
) -> dict[str, Any]:
    results = sorted(results, key=lambda r: r.shard)
    rows = sorted((r for res in results for r in res.rows), key=lambda r: r["key"])
    rejects = [r for res in results for r in res.rejects]
    io.write_atomic(io.join(out_dir, "manifest.parquet"), manifest_bytes(rows))
    io.write_atomic(io.join(out_dir, "rejects.jsonl"), rejects_bytes(rejects))
    summary = build_summary(
        results, resolved_config=resolved_config, git_revision=git_revision, config_digest=config_digest
    )
    io.write_atomic(
        io.join(out_dir, "summary.json"),
        (json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    )
    # Every shard is written and has removed its own spool folder; what is left (a crashed
    # earlier run's leftovers) goes too.
    delete_tree(work_dir(out_dir))
    return summary
