"""``duplexloom export moshi|nemo SHARDS... OUT``: shards -> files an existing trainer reads.

SHARDS are glob patterns read through Beam's FileSystems (local, ``gs://``, ...); OUT is a local
folder. Prints the export summary (also written to ``OUT/export_summary.json``) as JSON. Exit code
0 when every sample was exported, 1 when some became rejects (``OUT/rejects.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import sys

from .export import exporter_names, run_export


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplexloom export", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="format", required=True, metavar="FORMAT")

    moshi = sub.add_parser("moshi", help="moshi-finetune: stereo 24 kHz wav + alignments JSON + jsonl")
    moshi.add_argument("--sample-rate", type=int, default=24_000, help="wav sample rate (Hz)")
    moshi.add_argument(
        "--relative-paths", action="store_true", help="manifest paths relative to OUT (default: absolute)"
    )
    moshi.add_argument(
        "--assistant-words-only", action="store_true", help="leave the user's words out of the alignments"
    )
    moshi.add_argument(
        "--min-duration",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="pack consecutive sessions into files of at least this duration (0: one file per session)",
    )
    moshi.add_argument(
        "--gap", type=float, default=1.0, metavar="SECONDS", help="silence between packed sessions"
    )

    nemo = sub.add_parser("nemo", help="NeMo duplex S2S: Lhotse cuts with target_audio")
    nemo.add_argument(
        "--target-sample-rate",
        type=int,
        default=22_050,
        help="assistant track rate (default 22050, the s2s_duplex recipe's codec rate; 0: the session rate)",
    )
    nemo.add_argument(
        "--no-shar", dest="shar", action="store_false", help="skip the Lhotse Shar copy under OUT/shar"
    )
    nemo.add_argument("--shar-shard-size", type=int, default=1000)
    nemo.add_argument("--user-role", default="user", help="user supervisions' speaker (NeMo input_roles)")
    nemo.add_argument("--agent-role", default="agent", help="assistant supervisions' speaker (output_roles)")

    for sp in (moshi, nemo):
        sp.add_argument(
            "paths", nargs="+", metavar="SHARDS... OUT", help="shard glob(s), then the output dir"
        )
    assert sorted(sub.choices) == exporter_names()
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.paths) < 2:
        print("duplexloom export: need at least one SHARDS pattern and OUT", file=sys.stderr)
        return 2
    *shards, out = args.paths
    if args.format == "moshi":
        options = {
            "sample_rate": args.sample_rate,
            "relative_paths": args.relative_paths,
            "include_user_words": not args.assistant_words_only,
            "min_duration_s": args.min_duration,
            "gap_s": args.gap,
        }
    else:
        options = {
            "target_sample_rate": args.target_sample_rate or None,
            "shar": args.shar,
            "shar_shard_size": args.shar_shard_size,
            "user_role": args.user_role,
            "agent_role": args.agent_role,
        }
    summary = run_export(args.format, shards, out, **options)
    print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    return 1 if summary.rejects else 0


if __name__ == "__main__":
    sys.exit(main())
