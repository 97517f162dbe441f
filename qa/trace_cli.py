"""``duplexloom trace SHARDS KEY``: print one sample's chunk trace (SPEC 15) in the terminal, the
action channel highlighted when stdout is a terminal. Exit 1 when the key is not found."""

from __future__ import annotations

import argparse
import sys

from duplexloom.qa.trace import terminal_trace
from duplexloom.shardio import expand_shards, iter_shard_samples
from duplexloom.timeline.sample_codec import decode_sample


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="duplexloom trace", description=__doc__)
    ap.add_argument("shards", help="shard path, glob, {000000..000009} range, directory, or comma list")
    ap.add_argument("key", help="sample key (the part of the member names before the first dot)")
    ap.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    ap.add_argument("--no-times", action="store_true", help="print the bare SPEC 15 lines")
    args = ap.parse_args(argv)
    try:
        paths = expand_shards(args.shards)
    except FileNotFoundError as e:
        print(f"duplexloom trace: {e}", file=sys.stderr)
        return 2
    for raw in iter_shard_samples(paths):
        if raw.key != args.key:
            continue
        s = decode_sample(raw.key, raw.members)
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        sys.stdout.write(
            terminal_trace(s.chunks, s.trace, chunk_ms=s.meta.chunk_ms, color=color, times=not args.no_times)
        )
        return 0
    print(f"duplexloom trace: no sample {args.key!r} in {len(paths)} shard(s)", file=sys.stderr)
    return 1
