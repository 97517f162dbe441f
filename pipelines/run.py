"""The composition: seeds -> annotate -> plan -> TTS -> align -> build -> serialize -> shards.

Stable step labels (``Seeds``, ``Annotate``, ``NearDuplicates``, ``Plan``, ``TTS``, ``Align``, ``SpoolClips``,
``GroupSession``, ``Build``, ``Serialize``, ``SpoolSamples``, ``GroupShard``, ``WriteShards``,
``WriteOutputs``) so a Dataflow update or a reader of the job graph can rely on them. Audio and
sample bytes go through the spool (:mod:`.spool`), not through the two shuffles, so a worker's
memory does not grow with the number of seeds; an utterance whose audio is in the TTS cache travels
as its path there (see :func:`shared_cache`) and is not spooled at all. What does go through the
shuffles is :class:`~.transport.Sealed` (pickled once, opened once where it is used). :func:`build_pipeline` wires the transforms on a
given pipeline (tests use ``TestPipeline``); :func:`run` makes the pipeline from Beam options,
writes the resolved config beside the output, runs it, and returns the summary.
Every stage emits rejects on a tagged output; they are flattened, grouped per shard with the shard's
samples, and end in ``rejects.jsonl`` and the shard's resume state.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner, SwitchingDirectRunner
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from duplexloom import storage
from duplexloom.pipelines.align import AlignerModelHandler, AlignQuality
from duplexloom.pipelines.annotate import AnnotateBatch
from duplexloom.pipelines.build import BuildSession
from duplexloom.pipelines.config import ConfigError, RunConfig, config_digest, preflight, resolved_yaml
from duplexloom.pipelines.dedup import NearDuplicates
from duplexloom.pipelines.outputs import remove_cache_leftovers, write_outputs
from duplexloom.pipelines.plan import SPEAK, PlanSession
from duplexloom.pipelines.routing import REJECTS
from duplexloom.pipelines.seeds import PLANS, ReadSeeds, read_lines, resolve_inputs
from duplexloom.pipelines.serialize import SerializeSample
from duplexloom.pipelines.shards import WriteShard
from duplexloom.pipelines.spool import SpoolClip, SpoolSample, delete_tree, work_dir
from duplexloom.pipelines.transport import prepare_worker, seal
from duplexloom.pipelines.tts import TTSModelHandler

log = logging.getLogger("duplexloom.pipelines")
SAMPLES_DIR = Path(__file__).parent / "samples"
DEFAULT_SEEDS = str(SAMPLES_DIR / "seeds.jsonl")  # the demo slice of the full set
FULL_SEEDS = SAMPLES_DIR / "full"  # >= 200 seeds per language: --set "input.seeds=[.../full/*.jsonl]"


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


# Names for the bundled seed sets, usable wherever a seeds path is: --set "input.seeds=[bundled:full]".
BUNDLED = {"bundled:demo": DEFAULT_SEEDS, "bundled:full": str(FULL_SEEDS / "*.jsonl")}


def seed_patterns(cfg: RunConfig) -> list[str]:
    patterns = list(cfg.input.seeds) if cfg.input.seeds else [DEFAULT_SEEDS]
    return [BUNDLED.get(p, p) for p in patterns]


def shared_cache(p: beam.Pipeline, cache: str | None) -> bool:
    """Whether every worker of ``p`` reads the same cache directory, so a path into the TTS cache
    can stand for an utterance's audio (the TTS stage's lazy mode). True for a local cache under
    the DirectRunner and the FnApiRunner (one machine, in-memory or multi-processing); false on
    distributed runners, whose workers each have their own local cache (docs/DECISIONS.md)."""
    if cache is None or "://" in cache:
        return False
    return isinstance(p.runner, SwitchingDirectRunner | BundleBasedDirectRunner | FnApiRunner)


def build_pipeline(
    p: beam.Pipeline,
    cfg: RunConfig,
    *,
    seed_paths: list[str] | None = None,
    git_rev: str = "unknown",
    progress_total: int | None = None,
):
    """Wire the job on ``p``; returns the PCollection holding the one summary dict."""
    paths = seed_paths if seed_paths is not None else resolve_inputs(seed_patterns(cfg))
    out_dir = cfg.output.dir
    digest = config_digest(cfg)
    n = cfg.shards.num_shards
    policy = cfg.on_internal_error
    cache = cfg.cache_dir() if cfg.tts.cache else None

    seeds = p | "Seeds" >> ReadSeeds(
        paths,
        num_shards=n,
        out_dir=out_dir,
        config_digest=digest,
        resume=cfg.shards.resume,
        batch_size=cfg.annotate_batch_size,
        policy=policy,
    )
    ann = seeds.seeds | "Annotate" >> beam.ParDo(AnnotateBatch(cfg)).with_outputs(REJECTS, main="ok")
    deduped = ann.ok | "NearDuplicates" >> NearDuplicates(cfg.annotator.dedup_threshold, n)
    planned = deduped.ok | "Plan" >> beam.ParDo(PlanSession(cfg)).with_outputs(REJECTS, SPEAK, main="ok")
    tts_cache = storage.join(cache, "tts") if cache else None
    tts_step = RunInference(
        TTSModelHandler(
            cfg.tts.backend,
            cfg.tts_options(),
            tts_cache,
            cfg.tts.batch_size,
            policy,
            cfg.torch_threads,
            lazy_audio=shared_cache(p, tts_cache),
        )
    )
    if cfg.tts.accelerator:
        tts_step = tts_step.with_resource_hints(accelerator=cfg.tts.accelerator)
    align_step = RunInference(
        AlignerModelHandler(
            cfg.aligner.backend,
            cfg.aligner.options,
            cfg.aligner.batch_size,
            cfg.aligner.enabled,
            policy,
            storage.join(cache, "align") if cache else None,
            cfg.torch_threads,
            guard=cfg.aligner.guard.model_dump(),
        )
    )
    if cfg.aligner.accelerator:
        align_step = align_step.with_resource_hints(accelerator=cfg.aligner.accelerator)
    spoken = planned[SPEAK] | "TTS" >> tts_step | "TTSResult" >> beam.Map(lambda pr: pr.inference)
    align_results = (
        spoken
        | "Align" >> align_step
        | "AlignResult" >> beam.Map(lambda pr: (pr.inference.clip.session_id, pr.inference))
    )
    quality = align_results | "AlignQuality" >> beam.CombineGlobally(AlignQuality())
    aligned = align_results | "SpoolClips" >> beam.Map(SpoolClip(out_dir, n))
    built = (
        {"sessions": planned.ok, "clips": aligned}
        | "GroupSession" >> beam.CoGroupByKey()
        | "Build" >> beam.ParDo(BuildSession(cfg)).with_outputs(REJECTS, main="ok")
    )
    encoded = built.ok | "Serialize" >> beam.ParDo(SerializeSample(cfg, progress_total)).with_outputs(
        REJECTS, main="ok"
    )
    rejects = (
        seeds[REJECTS],
        ann[REJECTS],
        deduped[REJECTS],
        planned[REJECTS],
        built[REJECTS],
        encoded[REJECTS],
    ) | "AllRejects" >> beam.Flatten()
    results = (
        {
            "plans": seeds[PLANS] | "KeyPlans" >> beam.Map(lambda pl: (pl.shard, pl)),
            "samples": encoded.ok
            | "SpoolSamples" >> beam.Map(SpoolSample(out_dir, n))
            | "KeySamples" >> beam.Map(lambda e: (e.shard, seal(e))),
            "rejects": rejects,
        }
        | "GroupShard" >> beam.CoGroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(out_dir, digest, n, cfg.progress))
    )
    resolved = cfg.model_dump(mode="json")
    return (
        results
        | "CollectShards" >> beam.combiners.ToList()
        | "WriteOutputs"
        >> beam.Map(
            lambda rs, q: write_outputs(
                rs,
                out_dir,
                resolved_config=resolved,
                git_revision=git_rev,
                config_digest=digest,
                align_quality=q,
            ),
            q=beam.pvalue.AsSingleton(quality),
        )
    )


def count_lines(paths: list[str]) -> int | None:
    """Seed lines to expect, for the progress log; only for local files (remote ones may be huge)."""
    if any("://" in p for p in paths):
        return None

    n = 0
    for p in paths:
        with open(p, "rb") as f:  # streamed: a seeds file may hold one endless line
            n += sum(1 for raw in read_lines(f) if raw.strip())
    return n


def ensure_runner(beam_args: list[str]) -> list[str]:
    """Beam options pass through untouched; only a missing runner defaults to the DirectRunner
    (Beam's own default, Prism, downloads a binary at run time)."""
    if any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        return list(beam_args)
    return ["--runner=DirectRunner", *beam_args]


def make_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """The Beam pipeline of these options; an unknown ``--runner`` is a :class:`ConfigError`."""
    try:
        return beam.Pipeline(options=options)
    except ValueError as e:
        raise ConfigError(f"Beam options: {e}") from None


def run(cfg: RunConfig, beam_args: list[str] | None = None) -> tuple[dict[str, Any], Any]:
    """Run the job; returns (summary, Beam PipelineResult). The Beam options reach FileSystems
    before the first read or write (``s3://`` needs them); the config and the inputs are checked
    first (:func:`~.config.preflight`, :class:`~.config.ConfigError`; :class:`~.seeds.InputError`);
    a run that raises removes its spool, a finished one also the cache files killed runs left."""
    t_start = time.time()
    options = storage.set_storage_options(ensure_runner(beam_args or []))
    preflight(cfg)
    paths = resolve_inputs(seed_patterns(cfg))
    p = make_pipeline(options)
    out_dir = cfg.output.dir
    storage.mkdirs(out_dir)
    storage.write_atomic(storage.join(out_dir, "config.yaml"), resolved_yaml(cfg).encode("utf-8"))
    prepare_worker()  # the DirectRunner runs the stages in this process
    build_pipeline(p, cfg, seed_paths=paths, git_rev=git_revision(), progress_total=count_lines(paths))
    finished = False
    try:
        result = p.run()
        result.wait_until_finish()
        finished = True
    finally:
        if not finished:  # the shards written so far stay (resume); the spool is of no use
            delete_tree(work_dir(out_dir))
    if cfg.tts.cache:
        remove_cache_leftovers(cfg.cache_dir(), older_than=t_start)
    summary = json_load(storage.join(out_dir, "summary.json"))
    return summary, result


def json_load(path: str) -> Any:
    return json.loads(storage.read_bytes(path))
