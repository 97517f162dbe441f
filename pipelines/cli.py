"""``duplexloom run --config CONFIG.yaml [--set a.b=c ...] [--out DIR] [--seeds PATH ...] [Beam options]``

Everything this parser does not know is handed to Beam untouched (``--runner``, ``--project``,
``--direct_running_mode``, ...); without ``--runner`` the DirectRunner is used. Prints the seed
accounting ``seeds in = samples out + rejects`` at the end of every run.
Exit codes: 0 ok; 2 bad config or unreadable input; 3 the run finished but with internal errors or
an unbalanced account (look at rejects.jsonl).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from duplexloom.pipelines.config import ConfigError, load_config


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="duplexloom run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="YAML config merged over the embedded defaults")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (YAML scalar), e.g. shards.num_shards=4; repeatable",
    )
    ap.add_argument("--out", help="shortcut for --set output.dir=DIR")
    ap.add_argument("--seeds", action="append", help="shortcut for input.seeds (repeatable)")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress logging")
    return ap


_NOISE = ("Resource module is not available", "apitools not found")


def _quiet_beam_noise(record: logging.LogRecord) -> bool:
    # RunInference warns on every batch that it cannot read memory use; that hides our progress.
    return not any(n in str(record.msg) for n in _NOISE)


def main(argv: list[str] | None = None) -> int:
    args, beam_args = parser().parse_known_args(argv)
    sets = list(args.sets)
    if args.out:
        sets.append(f"output.dir={args.out}")
    if args.seeds:
        sets.append("input.seeds=[" + ",".join(repr(s) for s in args.seeds) + "]")
    if args.quiet:
        sets.append("progress=false")
    try:
        cfg = load_config(args.config, sets)
    except (ConfigError, OSError) as e:
        print(f"duplexloom run: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        from duplexloom.pipelines.config import resolved_yaml

        print(resolved_yaml(cfg), end="")
        return 0
    # Beam installs a root handler on import, so ours is a handler of our own logger.
    ours = logging.getLogger("duplexloom")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    ours.addHandler(handler)
    ours.propagate = False
    ours.setLevel(logging.INFO if cfg.progress else logging.WARNING)

    from duplexloom.pipelines.run import run, seed_patterns
    from duplexloom.pipelines.seeds import InputError, resolve_inputs

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    for h in logging.getLogger().handlers:  # installed by the Beam import above
        h.addFilter(_quiet_beam_noise)

    from duplexloom.pipelines.io import set_storage_options

    set_storage_options(beam_args)  # s3:// seeds are matched below, before any Pipeline exists
    try:
        paths = resolve_inputs(seed_patterns(cfg))
    except InputError as e:
        print(f"duplexloom run: {e}", file=sys.stderr)
        return 2
    print(
        f"duplexloom run: {len(paths)} seed file(s) -> {cfg.output.dir} ({cfg.shards.num_shards} shards)",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.time()
    local = "://" not in cfg.output.dir
    summary, _ = run(cfg, beam_args)
    wall = time.time() - t0
    acc = summary["accounting"]
    ok = "OK" if acc["balanced"] else "MISMATCH"
    print(
        f"seeds in = {acc['seeds_in']}; samples out = {acc['samples_out']}; rejects = {acc['rejects']}; "
        f"{acc['seeds_in']} {'=' if acc['balanced'] else '!='} {acc['samples_out']} + {acc['rejects']} [{ok}]"
    )
    print(
        f"audio: {summary['audio_hours']['sessions'] * 3600:.1f} s of sessions in {wall:.1f} s wall; "
        f"shards: {summary['shards']['count']} ({summary['shards']['skipped_on_resume']} skipped on resume)"
    )
    if summary["reject_codes"]:
        print("rejects by stage/code: " + ", ".join(f"{k}={v}" for k, v in summary["reject_codes"].items()))
    if cfg.qa_report and local:
        report = write_qa_report(cfg.output.dir, summary)
        if report:
            print(f"QA report: {report}")
    if summary["internal_errors"]:
        print(
            f"!!! {summary['internal_errors']} INTERNAL ERROR(S): see code internal_error in "
            f"{cfg.output.dir}/rejects.jsonl (tracebacks in detail)",
            file=sys.stderr,
        )
        return 3
    return 0 if acc["balanced"] else 3


def write_qa_report(out_dir: str, summary: dict) -> str | None:
    """The QA report in ``<out>/report/`` when the qa package provides one."""
    try:
        from duplexloom.qa.report import write_report
    except ImportError:
        return None
    from duplexloom.pipelines import io

    return write_report(
        io.join(out_dir, "shards", "*.tar"),
        io.join(out_dir, "report"),
        n=20,
        seed=0,
        summary_path=io.join(out_dir, "summary.json"),
        rejects_path=io.join(out_dir, "rejects.jsonl"),
    )
