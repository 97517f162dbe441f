"""``duplexloom qa``: reviewer tools. ``duplexloom qa sample SHARDS --n 20 --seed 0 --out DIR``
writes the static HTML report (see :mod:`duplexloom.qa.report`) and prints the index path."""

from __future__ import annotations

import argparse
import sys

from duplexloom.qa.report import write_report
from duplexloom.qa.validate import TokenizerUnavailable


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="duplexloom qa", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("sample", help="sample sessions from shards and write the HTML report")
    sp.add_argument("shards", help="shard path, glob, {000000..000009} range, directory, or comma list")
    sp.add_argument("--n", type=int, default=20, help="sessions to sample (default 20)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", required=True, help="report folder (any Beam filesystem path)")
    sp.add_argument("--summary", help="run summary.json (default: beside shards/)")
    sp.add_argument("--rejects", help="rejects.jsonl (default: beside shards/)")
    sp.add_argument("--tokenizer", help="the tokenizer.json the run declared (builtin needs none)")
    args = ap.parse_args(argv)
    try:
        index = write_report(
            args.shards,
            args.out,
            n=args.n,
            seed=args.seed,
            summary_path=args.summary,
            rejects_path=args.rejects,
            tokenizer_path=args.tokenizer,
        )
    except (FileNotFoundError, TokenizerUnavailable) as e:
        print(f"duplexloom qa: {e}", file=sys.stderr)
        return 2
    print(index)
    return 0
