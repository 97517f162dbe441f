"""``duplexloom run --config CONFIG.yaml [--set a.b=c ...] [--out DIR] [--seeds PATH ...] [Beam options]``

Everything this parser does not know is handed to Beam untouched (``--runner``, ``--project``,
``--direct_running_mode``, ...); without ``--runner`` the DirectRunner is used. Prints the seed
accounting ``seeds in = samples out + rejects`` at the end of every run.
Exit codes: 0 ok; 2 a usage, config, input or environment error (one line on stderr, no
traceback: an unknown key, a bad tokenizer file, an output folder that cannot be written, a full
disk, ...); 3 the run finished but with internal errors or an unbalanced account (look at
rejects.jsonl); 4 the run finished but more than ``max_transient_share`` of the lines ended in
transient rejects (a service was down, an engine crashed): rerun the same command to retry them.
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
import time
from typing import NoReturn

from duplexloom.pipelines.config import ConfigError, load_config, preflight, resolved_yaml


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints the usage too)
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


# errno values that are the environment's fault, not a bug: reported in one line, exit 2.
ENV_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
    errno.EISDIR,
}


def environment_error(exc: BaseException) -> OSError | None:
    """The OSError of the environment (disk full, permission, ...) behind ``exc``, if any: Beam
    re-raises a worker's exception wrapped, so the cause chain is followed."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 20:
        if isinstance(e, OSError) and e.errno in ENV_ERRNOS:
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    text = str(exc)
    for code in ENV_ERRNOS:  # a portable runner passes only the message along
        if f"[Errno {code}]" in text:
            return OSError(code, text.split(f"[Errno {code}]", 1)[1].strip().splitlines()[0])
    return None


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="duplexloom run", description=__doc__.split("\n\n")[0])
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


class _HeldBeamErrors(logging.Filter):
    """Holds back Beam's own ERROR records (a failing step logs its traceback before the run
    raises): a full disk must end in one line, and a bug gets them printed after all."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apache_beam") and record.levelno >= logging.ERROR:
            self.held.append(record)
            return False
        return True

    def release(self) -> None:
        for record in self.held:
            print(logging.Formatter().format(record), file=sys.stderr)
        self.held.clear()


def main(argv: list[str] | None = None) -> int:
    # Beam warns on import, through the root logger, about optional GCP libraries; an error of
    # ours must stay the one line on stderr.
    logging.getLogger().addFilter(_quiet_beam_noise)
    args, beam_args = parser().parse_known_args(argv)
    sets = list(args.sets)
    if args.out is not None:
        sets.append(f"output.dir={args.out}")
    if args.seeds:
        sets.append("input.seeds=[" + ",".join(repr(s) for s in args.seeds) + "]")
    if args.quiet:
        sets.append("progress=false")
    try:
        cfg = load_config(args.config, sets)
    except (ConfigError, OSError) as e:
        print(f"duplexloom run: {one_line(e)}", file=sys.stderr)
        return 2
    if args.print_config:
        print(resolved_yaml(cfg), end="")
        return 0
    # Beam installs a root handler on import, so ours is a handler of our own logger.
    ours = logging.getLogger("duplexloom")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    ours.addHandler(handler)
    ours.propagate = False
    ours.setLevel(logging.INFO if cfg.progress else logging.WARNING)

    # lazy: apache_beam and torch, after our logging is set up; `run --help`/--print-config stay fast
    from duplexloom.pipelines.run import ensure_runner, make_pipeline, run, seed_patterns
    from duplexloom.pipelines.seeds import InputError, resolve_inputs
    from duplexloom.storage import set_storage_options

    # s3:// seeds are matched below, before any Pipeline exists; the filesystems' imports may install
    # logging handlers, so this comes before the filters below
    options = set_storage_options(ensure_runner(beam_args))
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    held = _HeldBeamErrors()
    for h in logging.getLogger().handlers:  # installed by the Beam import above
        h.addFilter(_quiet_beam_noise)
        h.addFilter(held)

    try:
        paths = resolve_inputs(seed_patterns(cfg))
        preflight(cfg)
        make_pipeline(options)
    except (InputError, ConfigError) as e:
        print(f"duplexloom run: {one_line(e)}", file=sys.stderr)
        return 2
    print(
        f"duplexloom run: {len(paths)} seed file(s) -> {cfg.output.dir} ({cfg.shards.num_shards} shards)",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.time()
    local = "://" not in cfg.output.dir
    try:
        summary, _ = run(cfg, beam_args)
    except (InputError, ConfigError) as e:
        print(f"duplexloom run: {one_line(e)}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as e:
        env = environment_error(e)
        if env is None:
            held.release()
            raise  # a bug: its traceback is what a report needs
        print(f"duplexloom run: the run stopped: {one_line(env)}", file=sys.stderr)
        return 2
    held.release()
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
    transient_over = summary["transient_share"] > cfg.max_transient_share
    if transient_over:
        print(
            f"!!! {summary['transient_rejects']} of {acc['seeds_in']} line(s) ended in a transient reject "
            f"(service unavailable, engine crash, I/O), over max_transient_share="
            f"{cfg.max_transient_share:g}: rerun the same command to retry them",
            file=sys.stderr,
        )
    if summary["internal_errors"]:
        print(
            f"!!! {summary['internal_errors']} INTERNAL ERROR(S): see code internal_error in "
            f"{cfg.output.dir}/rejects.jsonl (tracebacks in detail)",
            file=sys.stderr,
        )
        return 3
    if not acc["balanced"]:
        return 3
    return 4 if transient_over else 0


def one_line(e: BaseException) -> str:
    """An error message on one line (a config error lists its keys on several)."""
    text = re.sub(r":\s*\n\s*", ": ", str(e).strip())
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def write_qa_report(out_dir: str, summary: dict) -> str | None:
    """The QA report in ``<out>/report/`` when the qa package provides one."""
    try:  # lazy: matplotlib (qa.report), only at the end of a run that writes a report
        from duplexloom.qa.report import write_report
    except ImportError:
        return None
    from duplexloom import storage  # lazy: apache_beam (storage); the CLI module must import fast

    return write_report(
        storage.join(out_dir, "shards", "*.tar"),
        storage.join(out_dir, "report"),
        n=20,
        seed=0,
        summary_path=storage.join(out_dir, "summary.json"),
        rejects_path=storage.join(out_dir, "rejects.jsonl"),
    )
