"""``duplexloom train``: train the small TA4 + action model on shards, or evaluate a checkpoint.

    duplexloom train --config CONFIG.yaml --shards 'out/demo/shards/*.tar' --out runs/x [--set a.b=c ...]
    duplexloom train --out runs/x --resume                      # continue from runs/x/ckpt/last.pt
    duplexloom train --eval --checkpoint runs/x/ckpt/last.pt --shards 'heldout/*.tar' [--out runs/x]

Training writes ``config.yaml``, ``train_log.csv``, ``loss_curve.png``, ``ckpt/`` (and
``eval_log.csv`` when ``--eval-shards`` / ``data.eval_shards`` is set) under ``--out`` and prints a
JSON summary. ``--eval`` prints the evaluation JSON (per-channel loss, label timing) and writes it to
``<out>/eval.json`` when ``--out`` is given. Exit status 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplexloom train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML TrainConfig, or a bundled name: tiny, demo (defaults when omitted)")
    p.add_argument(
        "--shards", help="training shards (glob / brace list / comma list); eval shards with --eval"
    )
    p.add_argument("--eval-shards", help="held-out shards evaluated during/after training")
    p.add_argument("--out", help="run directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeat)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/ckpt/last.pt if present")
    p.add_argument(
        "--eval", action="store_true", help="evaluate --checkpoint on --shards instead of training"
    )
    p.add_argument("--checkpoint", help="checkpoint for --eval (default <out>/ckpt/last.pt)")
    p.add_argument("--device", help="override run.device (cpu, cuda, cuda:1, auto)")
    return p


def shards_problem(what: str, spec: str) -> str | None:
    """Why ``spec`` names no readable shard (one line), or ``None`` when every named one exists."""
    from duplexloom.shardio import expand_shards  # lazy: apache_beam (via storage); CLI start-up

    try:
        expand_shards(spec)
    except FileNotFoundError as err:  # an unmatched glob or folder; a named tar that is not there
        return (
            f"{what} {spec!r} matches no shard"
            if str(err).startswith("no shards")
            else f"{what} {spec!r}: {err}"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # lazy: torch, apache_beam (shardio), numpy (config): `duplexloom train --help` stays fast
    import torch  # noqa: F401

    from duplexloom.shardio import expand_shards

    from .config import load_config
    from .evaluate import evaluate
    from .train import load_bundle, resolve_device, train

    if args.eval:
        ckpt = args.checkpoint or (args.out and str(Path(args.out) / "ckpt" / "last.pt"))
        if not ckpt or not args.shards:
            print("duplexloom train --eval needs --checkpoint (or --out) and --shards", file=sys.stderr)
            return 2
        if (problem := shards_problem("--shards", args.shards)) is not None:
            print(f"duplexloom train: {problem}", file=sys.stderr)
            return 2
        bundle, _ = load_bundle(ckpt)
        device = resolve_device(args.device or bundle.cfg.run.device)
        result = evaluate(bundle, expand_shards(args.shards), device)
        text = json.dumps(result, indent=2, ensure_ascii=False)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "eval.json").write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    if not args.out:
        print("duplexloom train needs --out", file=sys.stderr)
        return 2
    overrides = list(args.set)
    if args.shards:
        overrides.append(f"data.shards={json.dumps(args.shards)}")
    if args.eval_shards:
        overrides.append(f"data.eval_shards={json.dumps(args.eval_shards)}")
    if args.device:
        overrides.append(f"run.device={args.device}")
    config = args.config
    resolved = Path(args.out) / "config.yaml"
    if config is None and args.resume and resolved.exists():
        config = str(resolved)  # resuming without --config: the run's own resolved config
    cfg = load_config(config, overrides)
    # Up front, not after the last step: a mistyped --eval-shards used to end a whole run in a traceback.
    for what, spec in (("--shards", cfg.data.shards), ("--eval-shards", cfg.data.eval_shards)):
        if spec and (problem := shards_problem(what, spec)) is not None:
            print(f"duplexloom train: {problem}", file=sys.stderr)
            return 2
    summary = train(cfg, args.out, resume=args.resume)
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
