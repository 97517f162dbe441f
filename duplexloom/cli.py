"""``duplexloom`` command: dispatches to the owning package's CLI module, imported lazily so that
``duplexloom render`` never pays for importing Beam or torch."""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "render": (
        "duplexloom.timeline.cli",
        "print the per-chunk TA4 + action-FIFO serialization of a timeline",
    ),
    "run": ("duplexloom.pipelines.cli", "run the Beam job: seeds -> WebDataset shards"),
    "qa": ("duplexloom.qa.cli", "reviewer tools: qa sample SHARDS --out DIR (HTML report)"),
    "validate": ("duplexloom.qa.validate_cli", "check every SPEC invariant on every sample of shards"),
    "trace": ("duplexloom.qa.trace_cli", "print one sample's chunk trace"),
    "train": ("duplexloom.trainer.cli", "train the small TA4 + action model on shards"),
    "export": ("duplexloom.pipelines.export_cli", "export shards for moshi-finetune or NeMo duplex"),
}


def _usage() -> str:
    lines = ["usage: duplexloom COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"duplexloom: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if name not in ("render", "run"):  # `run` hands its Beam options to FileSystems itself
        # lazy: apache_beam (storage); `duplexloom --help` and `render` must not import it
        from duplexloom.storage import set_storage_options, split_storage_args

        storage, rest = split_storage_args(rest)
        set_storage_options(storage)  # before the command's first read or write (s3:// needs it)
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
