"""``duplexloom render TIMELINE.json``: print the per-chunk TA4 + action-FIFO serialization.

Reads the seconds-based timeline JSON of ``timeline/seconds_json.py`` (``-`` for stdin), validates it, and
prints the SPEC section 15 trace (``--format trace``, default) or a JSON list with one object per
chunk (``--format json``). A bad input prints ``error: <field path>: <reason> (<code>)`` to stderr
and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from duplexloom.schemas.reject import RejectError

from .seconds_json import timeline_from_json
from .serialize import chunks_to_json, render_trace, serialize
from .tokenizer import load_tokenizer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplexloom render", description=__doc__.split("\n")[0])
    p.add_argument("timeline", metavar="TIMELINE.json", help="seconds-based timeline JSON ('-' = stdin)")
    p.add_argument("--format", choices=("trace", "json"), default="trace")
    p.add_argument("--budget", type=int, default=10, help="action tokens per chunk (default 10)")
    p.add_argument("--tokenizer", metavar="PATH", default=None, help="a tokenizer.json (default: builtin)")
    p.add_argument(
        "--asr",
        choices=("user", "assistant", "both", "none"),
        default="none",
        help="derive transcript actions from the words of this side (default none)",
    )
    p.add_argument("--lag", type=int, default=2, help="ASR lag in chunks (default 2)")
    return p


def _fail(where: str, reason: str) -> int:
    print(f"error: {where}: {reason}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.budget < 1:
        return _fail("--budget", f"must be >= 1, got {args.budget}")
    if args.lag < 0:
        return _fail("--lag", f"must be >= 0, got {args.lag}")
    try:
        raw = sys.stdin.read() if args.timeline == "-" else open(args.timeline, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        return _fail(args.timeline, f"cannot read: {e}")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return _fail(args.timeline, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}")
    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except (OSError, ValueError) as e:
        return _fail("--tokenizer", f"cannot load {args.tokenizer!r}: {e}")
    sides = {"user": ("user",), "assistant": ("assistant",), "both": ("user", "assistant"), "none": ()}[
        args.asr
    ]
    try:
        tl = timeline_from_json(obj)
        chunks = serialize(tl, tokenizer=tokenizer, budget=args.budget, asr_sides=sides, lag_chunks=args.lag)
    except RejectError as e:
        where, _, reason = e.detail.partition(": ")
        return _fail(where or "timeline", f"{reason or e.detail} ({e.code})")
    if args.format == "trace":
        sys.stdout.write(render_trace(chunks))
    else:
        json.dump(chunks_to_json(chunks), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    return 0
