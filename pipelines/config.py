"""The run's one config tree: ``RunConfig`` (frozen pydantic, ``extra="forbid"``), YAML + ``--set``.

Input: the embedded defaults (``pipelines/defaults/run.yaml``), optionally a user YAML file merged
over them, then ``--set a.b=c`` overrides (values parsed as YAML scalars, so ``--set
shards.num_shards=4`` is an int and ``--set serializer.layouts=[ta4,lws]`` a list).
Output: a validated :class:`RunConfig`; unknown keys anywhere are clear errors
(:class:`ConfigError`, naming the dotted path). The sections owned by other packages are typed
fields: ``annotator`` is a ``duplexloom.annotators.config.AnnotatorConfig``, ``timeline`` a
``duplexloom.timeline.config.TimelineConfig``. ``tts.options`` and ``aligner.options`` stay
mappings, checked against the backend's own config model when the config is loaded
(:func:`validate_backend_options`; the model depends on ``backend``, and the mapping is what the
sample's provenance records), so a typo anywhere fails before the job starts, not on a worker.
The resolved config (``config.yaml``, ``summary.json``, :func:`config_digest`) records the typed
sections as they were given (only the keys set, in the values written), as it always did.
:func:`preflight` then checks what the tree cannot say on its own, before any work starts: the
tokenizer file loads, the layouts and ASR sides exist, the seeds are files, the output and cache
folders can be written and their filesystem is installed.
No reject codes (a bad config is the user's error, raised before anything runs).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from importlib import resources
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from duplexloom.aligners.base import aligner_class, available_aligners, model_fingerprint
from duplexloom.annotators.config import AnnotatorConfig
from duplexloom.timeline.config import TimelineConfig
from duplexloom.timeline.families import check_channel_overrides
from duplexloom.timeline.tokenizer import load_tokenizer
from duplexloom.tts_adapters.base import available_tts, tts_class


class ConfigError(ValueError):
    """The config file or an override is wrong; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputConfig(_Section):
    # Paths or glob patterns (any FileSystems scheme). None = the bundled sample seeds.
    seeds: tuple[str, ...] | None = None


class OutputConfig(_Section):
    dir: str = Field(default="out/run", min_length=1)
    # Local directory for the content-addressed caches (TTS audio, alignments, track encodings).
    # None = "<dir>/cache" for a local output, "<system temp dir>/duplexloom-cache" on each worker
    # for a remote one. The caches use the local filesystem: a gs:// or s3:// cache is refused
    # rather than written to a local folder named after the URL.
    cache_dir: str | None = None

    @field_validator("cache_dir")
    @classmethod
    def _local_cache(cls, v: str | None) -> str | None:
        if v is not None and "://" in v:
            raise ValueError(
                f"output.cache_dir must be a local path on each worker, not {v!r}: the caches are "
                "worker-local files (leave it unset for <system temp dir>/duplexloom-cache)"
            )
        return v


class ShardsConfig(_Section):
    num_shards: int = Field(default=8, ge=1, le=1_000_000)
    # Resume: skip shards already written whole by an earlier run of the same config and seeds.
    resume: bool = True


class TTSStageConfig(_Section):
    backend: str = "espeak"
    options: dict[str, Any] = Field(default_factory=dict)  # the backend's own config model
    speaker_library: str | None = None  # manifest JSON; None = the embedded espeak library
    batch_size: int = Field(default=16, ge=1)
    cache: bool = True
    # Beam resource hint for this stage only (Dataflow right fitting), e.g.
    # "type:nvidia-l4;count:1;install-nvidia-driver". None = run on the job's default workers.
    accelerator: str | None = None


class AlignGuardConfig(_Section):
    """The align stage's quality bar (pipelines/align.py): an utterance below it is rejected
    ``align_poor`` with its scores. The confidence bar is off by default: the bundled model's
    confidence on right and wrong transcripts overlaps (docs/DECISIONS.md)."""

    enabled: bool = True
    min_speech_in_spans: float = Field(default=0.9, ge=0, le=1)  # share of speech energy
    max_mostly_silent_share: float = Field(default=0.2, ge=0, le=1)  # of words
    min_confidence: float = Field(default=0.0, ge=0, le=1)


class AlignerStageConfig(_Section):
    backend: str = "tiny"
    options: dict[str, Any] = Field(default_factory=dict)
    guard: AlignGuardConfig = AlignGuardConfig()
    batch_size: int = Field(default=16, ge=1)
    enabled: bool = True  # False: trust the TTS engine's native word times (debugging only)
    accelerator: str | None = None  # Beam resource hint, as for tts.accelerator


class SerializerConfig(_Section):
    tokenizer: str | None = None  # tokenizer.json path; None = the builtin offline tokenizer
    budget: int = Field(default=10, ge=1)
    # Per-family overrides of what the action channel carries (SPEC 11 table; channels asr_user,
    # asr_assistant, labels, tools, think), e.g. {dialogue: [asr_user]}; recorded in every sample.
    channels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    lag_chunks: int = Field(default=2, ge=0)
    layouts: tuple[str, ...] = ("ta4",)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return check_channel_overrides(v)


class RunConfig(_Section):
    """Everything a run depends on. ``config_digest`` of it (minus output paths) keys resume."""

    run_seed: int = 0
    input: InputConfig = InputConfig()
    output: OutputConfig = OutputConfig()
    shards: ShardsConfig = ShardsConfig()
    annotator: AnnotatorConfig = AnnotatorConfig()
    # Merge/augmentation knobs and the family mix (``timeline.family_mix``; a seed's own
    # ``family`` wins over the draw).
    timeline: TimelineConfig = TimelineConfig()
    tts: TTSStageConfig = TTSStageConfig()
    aligner: AlignerStageConfig = AlignerStageConfig()
    serializer: SerializerConfig = SerializerConfig()
    annotate_batch_size: int = Field(default=8, ge=1)
    # SPEC 17: score every sample from its audio and action channel; a failing one is rejected.
    semantic_check: bool = True
    # Policy for exceptions that are not RejectError (bugs or broken backends): "reject" turns each
    # into an ``internal_error`` reject with the traceback (counted and printed loudly at the end);
    # "fail" re-raises and stops the job.
    on_internal_error: str = Field(default="reject", pattern="^(reject|fail)$")
    progress: bool = True
    qa_report: bool = True
    # torch intra-op threads in each worker process (the TTS and aligner models). Beam already runs
    # bundles in parallel; more than one torch thread per process oversubscribes the cores, and
    # OpenMP's spin-waiting then burns CPU (measured: 16 seeds took 45 CPU-s in the aligner with
    # torch's default of one thread per core on 2 cores, 0.4 CPU-s with 1). null = torch's default.
    # Part of the config digest: the thread count can change float reduction order.
    torch_threads: int | None = Field(default=1, ge=1)
    # Largest share of input lines that may end in a transient reject (service down, engine crash,
    # I/O; schemas/reject.py) for the run to count as done: above it the CLI exits 4, and a rerun
    # of the same command retries exactly those seeds. Not part of the config digest.
    max_transient_share: float = Field(default=0.01, ge=0.0, le=1.0)

    def cache_dir(self) -> str:
        if self.output.cache_dir:
            return self.output.cache_dir
        if "://" in self.output.dir:
            return os.path.join(tempfile.gettempdir(), "duplexloom-cache")
        return self.output.dir.rstrip("/") + "/cache"

    # The typed sections as given (only the keys set, each value as written): what the resolved
    # config and the digest record of them, exactly as when they were plain mappings, so that
    # ``barge_in_prob: 1`` is not rewritten to ``1.0`` and existing runs keep their digest.
    _given: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_given(cls, data: Any, handler: Any) -> RunConfig:
        cfg = handler(data)
        if isinstance(data, dict):
            for name in _GIVEN_SECTIONS:
                if name in data:
                    v = data[name]
                    given = v.model_dump(mode="json", exclude_unset=True) if isinstance(v, BaseModel) else v
                    cfg._given[name] = copy.deepcopy(given)
        return cfg

    @field_serializer("annotator", "timeline")
    def _dump_as_given(self, v: BaseModel, info: Any) -> Any:
        if info.field_name in self._given:
            return self._given[info.field_name]
        return v.model_dump(mode="json", exclude_unset=True)

    def tts_options(self) -> dict[str, Any]:
        """The TTS backend's config: the session sample rate unless the user set one."""
        opts = dict(self.tts.options)
        opts.setdefault("sample_rate", self.timeline.sample_rate)
        return opts


_GIVEN_SECTIONS = ("annotator", "timeline")


# ---- loading ---------------------------------------------------------------------------------


def default_tree() -> dict[str, Any]:
    text = resources.files("duplexloom.pipelines").joinpath("defaults/run.yaml").read_text("utf-8")
    return yaml.safe_load(text) or {}


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, f"{where}{k}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_set(expr: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], yaml-scalar(c))."""
    if "=" not in expr:
        raise ConfigError(f"--set {expr!r}: expected KEY=VALUE, e.g. shards.num_shards=4")
    key, _, raw = expr.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {expr!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {expr!r}: value is not valid YAML: {e}") from e
    return path, value


def apply_set(tree: dict[str, Any], expr: str) -> dict[str, Any]:
    path, value = parse_set(expr)
    out = copy.deepcopy(tree)
    node = out
    for i, part in enumerate(path[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {expr!r}: {'.'.join(path[: i + 1])} is not a section")
        node = nxt
    node[path[-1]] = value
    return out


def validate_backend_options(cfg: RunConfig) -> None:
    """The TTS and aligner backends exist and take their ``options`` (the backend's own config
    model, found in its registry), so an unknown backend or option fails here, not on a worker.
    ``options`` stays a mapping in :class:`RunConfig`: which model types it depends on ``backend``,
    and looking that up imports the backend's package."""
    # Public registry accessors only (the registries' dicts are the packages' business).
    if cfg.tts.backend not in available_tts():
        raise KeyError(f"tts.backend {cfg.tts.backend!r} is unknown; known: {available_tts()}")
    try:
        tts_class(cfg.tts.backend).config_model(**cfg.tts_options())
    except ValidationError as e:
        raise _invalid(e, "tts.options.") from None
    if cfg.aligner.enabled:
        if cfg.aligner.backend not in available_aligners():
            raise KeyError(
                f"aligner.backend {cfg.aligner.backend!r} is unknown; known: {available_aligners()}"
            )
        try:
            aligner_class(cfg.aligner.backend).config_model(**cfg.aligner.options)
        except ValidationError as e:
            raise _invalid(e, "aligner.options.") from None


def _invalid(e: ValidationError, where: str = "") -> ConfigError:
    """One line per error, each naming its dotted key (``where`` + the model's location)."""
    lines = []
    for err in e.errors():
        loc = where + ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {loc}: {msg}")
    return ConfigError("invalid config:\n" + "\n".join(lines))


def build_config(tree: dict[str, Any], *, check_stages: bool = True) -> RunConfig:
    try:
        cfg = RunConfig.model_validate(tree)
    except ValidationError as e:
        raise _invalid(e) from None
    if check_stages:
        try:
            validate_backend_options(cfg)
        except (TypeError, KeyError) as e:
            raise ConfigError(f"invalid config: {e}") from None
    return cfg


def load_config(
    path: str | None = None, sets: list[str] | tuple[str, ...] = (), *, check_stages: bool = True
) -> RunConfig:
    """Embedded defaults <- YAML file at ``path`` (read through FileSystems) <- ``--set`` overrides."""
    tree = default_tree()
    if path:
        # lazy: apache_beam (via storage); config loads for `run --help`/--print-config without Beam
        from duplexloom.storage import read_text

        try:
            user = yaml.safe_load(read_text(path)) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path}: not valid YAML: {e}") from e
        if not isinstance(user, dict):
            raise ConfigError(f"config {path}: top level must be a mapping")
        tree = _merge(tree, user)
    for expr in sets:
        tree = apply_set(tree, expr)
    return build_config(tree, check_stages=check_stages)


def resolved_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True, allow_unicode=True)


# ---- preflight --------------------------------------------------------------------------------

SIDES = ("user", "assistant")


def _sides_in(value: Any) -> list[Any]:
    """Every side named by a ``*sides`` setting: a list of sides, or a table of such lists."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _sides_in(v)]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def check_serializer(cfg: RunConfig) -> None:
    """Layouts, ASR sides and the tokenizer, as the serialize stage will use them."""
    # lazy: apache_beam (via pipelines.serialize); config loads for `run --help`/--print-config without Beam
    from duplexloom.pipelines.serialize import LAYOUTS

    sc = cfg.serializer.model_dump(mode="json")
    for name in sc.get("layouts") or ():
        if name != "ta4" and name not in LAYOUTS:
            raise ConfigError(
                f"serializer.layouts: unknown layout {name!r}; known: ta4, {', '.join(LAYOUTS)}"
            )
    # Any setting named like "asr_sides" (a list, or a per-family table of lists).
    for key, value in sc.items():
        if key.endswith("sides"):
            bad = [s for s in _sides_in(value) if s not in SIDES]
            if bad:
                raise ConfigError(f"serializer.{key}: unknown side(s) {bad}; known: {', '.join(SIDES)}")
    tok = cfg.serializer.tokenizer
    if tok is not None and tok != "builtin":
        _check_tokenizer(tok)


def _check_tokenizer(path: str) -> None:
    # lazy: apache_beam (via storage); config loads for `run --help`/--print-config without Beam
    from duplexloom import storage as io

    where = f"serializer.tokenizer {path!r}"
    if not io.exists(path):
        raise ConfigError(f"{where}: no such file")
    try:
        tree = json.loads(io.read_bytes(path))
    except (OSError, ValueError) as e:  # IsADirectoryError, not UTF-8, not JSON
        raise ConfigError(f"{where}: not a readable tokenizer.json: {e}") from None
    model = tree.get("model") if isinstance(tree, dict) else None
    if not isinstance(model, dict) or not model.get("type"):
        raise ConfigError(f"{where}: not a tokenizer.json (a JSON object with a 'model' that has a 'type')")

    # What is left to fail is inside the tokenizers library, which raises an untyped Exception:
    # such a file gets its traceback here, still before any work.
    try:
        load_tokenizer(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: cannot be loaded: {e}") from None


def _check_writable_dir(path: str, what: str) -> None:
    """``path`` is (or can become) a folder we can write to; a remote one needs its filesystem."""
    # lazy: apache_beam; config loads for `run --help`/--print-config without Beam
    from apache_beam.io.filesystems import FileSystems

    if "://" in path:
        try:
            FileSystems.get_filesystem(path)
        except ValueError as e:
            scheme = path.split("://", 1)[0]
            hint = {"gs": " (pip install 'duplexloom[gcp]')", "s3": " (pip install 'duplexloom[aws]')"}
            raise ConfigError(f"{what} {path!r}: {e}{hint.get(scheme, '')}") from None
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{what} {path!r} exists and is not a folder")
    probe_base = path
    while not os.path.exists(probe_base):  # the nearest existing parent must let us create it
        parent = os.path.dirname(os.path.abspath(probe_base))
        if parent == os.path.abspath(probe_base):
            break
        probe_base = parent
    if not os.path.isdir(probe_base):
        raise ConfigError(f"{what} {path!r}: {probe_base!r} is not a folder")
    if not os.access(probe_base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path!r}: {probe_base!r} is not writable")


def check_paths(cfg: RunConfig) -> None:
    _check_writable_dir(cfg.output.dir, "output.dir")
    if cfg.tts.cache:
        _check_writable_dir(cfg.cache_dir(), "output.cache_dir")
    lib = cfg.tts.speaker_library
    if lib is not None:
        # lazy: apache_beam (via storage); config loads for `run --help`/--print-config without Beam
        from duplexloom import storage as io

        if not io.exists(lib):
            raise ConfigError(f"tts.speaker_library {lib!r}: no such file")


def preflight(cfg: RunConfig) -> None:
    """Everything about ``cfg`` that can be known before the job starts; :class:`ConfigError`."""
    check_serializer(cfg)
    check_paths(cfg)


def config_digest(cfg: RunConfig) -> str:
    """sha256 of everything that changes a sample's bytes (not where output goes, not progress),
    the aligner model's fingerprint included.

    Resume keys on it: a shard written under another digest is recomputed.
    """
    tree = cfg.model_dump(mode="json")
    tree.pop("output", None)
    tree.pop("input", None)  # the per-shard seed digest covers the input itself
    tree.pop("progress", None)
    tree.pop("qa_report", None)
    tree.pop("max_transient_share", None)
    tree["shards"].pop("resume", None)
    if cfg.aligner.enabled:
        # The bundled or local model's identity: retrained weights change every alignment.
        tree["aligner_model"] = model_fingerprint(cfg.aligner.backend, **cfg.aligner.options)
    blob = json.dumps(tree, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
