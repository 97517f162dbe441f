"""``duplexloom validate SHARDS``: check every SPEC invariant on every sample; print each violation
with its shard, key and chunk; exit 1 when any is found, 2 on a usage error, 0 when all hold.
``--semantic`` also scores each sample from its audio and action channel (SPEC 17)."""

from __future__ import annotations

import argparse
import json
import sys

from duplexloom.qa.checks import Violation
from duplexloom.qa.validate import TokenizerUnavailable, validate_shards
from duplexloom.shardio import expand_shards


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="duplexloom validate", description=__doc__)
    ap.add_argument("shards", help="shard path, glob, {000000..000009} range, directory, or comma list")
    ap.add_argument("--tokenizer", help="the tokenizer.json the run declared (builtin needs none)")
    ap.add_argument("--json", action="store_true", help="one JSON object per violation instead of text")
    ap.add_argument(
        "--semantic",
        action="store_true",
        help="also run the SPEC 17 self-check: labels, stops, tool calls and transcripts against the audio",
    )
    args = ap.parse_args(argv)
    try:
        paths = expand_shards(args.shards)
    except FileNotFoundError as e:
        print(f"duplexloom validate: {e}", file=sys.stderr)
        return 2

    def show(v: Violation) -> None:
        print(json.dumps(v.to_json(), ensure_ascii=False) if args.json else v.format(), flush=True)

    try:
        result = validate_shards(paths, args.tokenizer, on_violation=show, semantic=args.semantic)
    except TokenizerUnavailable as e:
        print(f"duplexloom validate: {e}", file=sys.stderr)
        return 2
    print(
        f"{len(paths)} shard(s), {result.samples} sample(s), {len(result.violations)} violation(s) "
        f"in {len(result.bad_keys)} sample(s)",
        file=sys.stderr,
    )
    return 1 if result.violations or result.samples == 0 else 0
