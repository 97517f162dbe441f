"""Each Beam stage of the job on its own, in a real ``TestPipeline`` (DirectRunner): annotate,
plan, TTS, align, build, serialize and write. Inputs are made by the pure code the stage before
calls (real espeak-ng speech and the bundled aligner, no mocks); each test checks what the stage
emits on its main output and on its rejects tag; the write stage also writes its shard and resumes
from its state. ``test_seeds.py`` covers the seed stage and ``test_run.py`` the whole composition."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import RunInference
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from duplexloom.pipelines.align import Aligned, AlignerModelHandler
from duplexloom.pipelines.annotate import AnnotateBatch
from duplexloom.pipelines.build import BuildSession, build_one, read_samples
from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.plan import SPEAK, PlanSession, plan_one, speak_requests
from duplexloom.pipelines.routing import REJECTS
from duplexloom.pipelines.seeds import ShardPlan
from duplexloom.pipelines.serialize import SerializeSample
from duplexloom.pipelines.shards import EncodedSample, WriteShard, load_finished_state, shard_path
from duplexloom.pipelines.spool import SpoolClip
from duplexloom.pipelines.transport import Sealed
from duplexloom.pipelines.tts import Spoken, TTSModelHandler
from duplexloom.schemas import Reject, RejectError, Seed, SeedTurn
from duplexloom.schemas.clip import AlignedClip
from duplexloom.timeline.families import choose_family
from duplexloom.timeline.sample_codec import REQUIRED_MEMBERS, iter_shard
from duplexloom.tts_adapters import load_library
from tests.pipelines.manifest_rows import manifest_row
from tests.timeline.test_merge_fixtures import en_annotation

SID = "en-weather-1"


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_config(sets=[f"output.cache_dir={cache}", "progress=false"])


def _seed(seed_id: str) -> Seed:
    return Seed(id=seed_id, lang="en", kind="dialogue", turns=(SeedTurn(role="user", text="Hi there."),))


def _shard(cfg, seed_id: str) -> int:
    return shard_of(sample_key(seed_id), cfg.shards.num_shards)


@pytest.fixture(scope="module")
def planned(cfg):
    ann = en_annotation("dialogue")
    return plan_one(_seed(SID), ann, cfg.timeline, cfg.run_seed, load_library(cfg.tts.speaker_library))


@pytest.fixture(scope="module")
def spoken(cfg, planned):
    handler = TTSModelHandler(cfg.tts.backend, cfg.tts_options(), None, 8)
    return [pr.inference for pr in handler.run_inference(speak_requests(planned), handler.load_model())]


@pytest.fixture(scope="module")
def aligned(cfg, spoken):
    handler = AlignerModelHandler(
        cfg.aligner.backend, cfg.aligner.options, 8, cfg.aligner.enabled, guard=cfg.aligner.guard.model_dump()
    )
    return [pr.inference for pr in handler.run_inference(spoken, handler.load_model())]


@pytest.fixture(scope="module")
def spooled(cfg, aligned, tmp_path_factory) -> list[AlignedClip]:
    """The aligned clips as they cross the session shuffle: samples spooled, each clip's AudioRef set."""
    spool = SpoolClip(str(tmp_path_factory.mktemp("out")), cfg.shards.num_shards)
    return [spool((a.clip.session_id, a))[1].open() for a in aligned]


def test_annotate_stage_decides_each_family_once_and_the_annotation_carries_it(cfg):
    """The seed's own family, else the seeded draw from the mix; an unknown one is rejected here,
    and the later stages read the decided family from the annotation."""
    turns = (SeedTurn(role="user", text="Is it cold today?"), SeedTurn(role="assistant", text="A bit, yes."))
    seeds = [
        Seed(id=sid, lang="en", kind="dialogue", family=fam, turns=turns)
        for sid, fam in [("drawn-0", None), ("drawn-1", "auto"), ("named", "pause"), ("odd", "karaoke")]
    ]
    want = [(s.id, choose_family(s.family, cfg.timeline, cfg.run_seed, s.id)) for s in seeds[:3]]
    assert want[2] == ("named", "pause")
    with TestPipeline() as p:
        out = p | beam.Create([(0, seeds)]) | beam.ParDo(AnnotateBatch(cfg)).with_outputs(REJECTS, main="ok")
        families = out.ok | beam.Map(lambda kv: (kv[0], kv[1][1].family))
        assert_that(families, equal_to(want), label="families")
        codes = out[REJECTS] | beam.Map(lambda sr: (sr[0], sr[1].record_id, sr[1].stage, sr[1].code))
        assert_that(codes, equal_to([(0, "odd", "annotate", "unknown_family")]), label="rej")


def test_plan_stage_emits_the_plan_its_speak_requests_and_rejects(cfg, planned):
    bad = en_annotation("interrupt", seed_id="no-interruptions", interruptions=())
    with TestPipeline() as p:
        out = (
            p
            | beam.Create(
                [(SID, (_seed(SID), en_annotation("dialogue"))), (bad.seed_id, (_seed(bad.seed_id), bad))]
            )
            | beam.ParDo(PlanSession(cfg)).with_outputs(REJECTS, SPEAK, main="ok")
        )
        plans = out.ok | "OpenPlan" >> beam.Map(lambda kv: (kv[0], kv[1].open().plan))
        assert_that(plans, equal_to([(SID, planned.plan)]), label="plans")
        ids = out[SPEAK] | beam.Map(lambda it: (it.session_id, it.utterance_id, it.role, it.speaker.id))
        want = [
            (SID, u.id, u.speaker, getattr(planned, u.speaker).id) for u in planned.plan.utterances_to_speak
        ]
        assert_that(ids, equal_to(want), label="speak")
        codes = out[REJECTS] | beam.Map(lambda sr: (sr[0], sr[1].record_id, sr[1].stage, sr[1].code))
        want_rej = [(_shard(cfg, bad.seed_id), bad.seed_id, "plan", "no_interruption_text")]
        assert_that(codes, equal_to(want_rej), label="rejects")


def test_tts_stage_speaks_each_item_and_rejects_one_bad_item_alone(cfg, planned):
    items = speak_requests(planned)
    # Same voice and language as the first item, so it fails inside that item's group call.
    bad = items[0].model_copy(update={"utterance_id": "bad", "text": "... !"})
    rate = cfg.timeline.sample_rate

    def summary(sp: Spoken):
        if sp.reject is not None:
            return (sp.item.utterance_id, sp.reject.stage, sp.reject.code)
        return (sp.item.utterance_id, sp.result.sample_rate, bool(sp.result.audio.size > rate // 10))

    with TestPipeline() as p:
        out = (
            p
            | beam.Create([*items, bad])
            | RunInference(TTSModelHandler(cfg.tts.backend, cfg.tts_options(), None, 4))
            | beam.Map(lambda pr: summary(pr.inference))
        )
        want = [(it.utterance_id, rate, True) for it in items] + [("bad", "tts", "tts_empty_text")]
        assert_that(out, equal_to(want))


def test_align_stage_gives_word_spans_inside_the_audio(cfg, spoken):
    n_words = {sp.item.utterance_id: len(sp.item.text.split()) for sp in spoken}

    def summary(a: Aligned):
        c = a.clip
        assert c.reject is None, c.reject
        n = a.samples.shape[0] if a.samples is not None else c.audio.n_samples
        inside = all(0 <= w[1] < w[2] <= n for w in c.words)
        return (c.utterance_id, len(c.words) == n_words[c.utterance_id], inside)

    handler = AlignerModelHandler(
        cfg.aligner.backend, cfg.aligner.options, 4, cfg.aligner.enabled, guard=cfg.aligner.guard.model_dump()
    )
    with TestPipeline() as p:
        out = p | beam.Create(spoken) | RunInference(handler) | beam.Map(lambda pr: summary(pr.inference))
        assert_that(out, equal_to([(sp.item.utterance_id, True, True) for sp in spoken]))


def test_a_tts_cache_entry_crosses_as_the_clips_audio_ref_and_builds_the_same_session(cfg, planned, tmp_path):
    """Lazy mode: a cached utterance leaves TTS as its cache entry, the align stage hands that path
    on as the clip's AudioRef (nothing to spool), and the built session equals the one built from
    the same cached samples passed on in memory and spooled."""
    requests = speak_requests(planned)
    cache, n = str(tmp_path / "tts"), cfg.shards.num_shards
    aligner = AlignerModelHandler(
        cfg.aligner.backend, cfg.aligner.options, 8, cfg.aligner.enabled, guard=cfg.aligner.guard.model_dump()
    )
    model = aligner.load_model()
    clips = {}
    for lazy in (False, True):  # the first pass also fills the cache
        tts = TTSModelHandler(cfg.tts.backend, cfg.tts_options(), cache, 8, lazy_audio=lazy)
        spoken = [pr.inference for pr in tts.run_inference(requests, tts.load_model())]
        aligned = [pr.inference for pr in aligner.run_inference(spoken, model)]
        out = str(tmp_path / f"out-{lazy}")
        clips[lazy] = [SpoolClip(out, n)((a.clip.session_id, a))[1].open() for a in aligned]
        if lazy:
            assert all(sp.result.audio is None for sp in spoken)
            assert [c.audio.path for c in clips[lazy]] == [sp.result.stored.path for sp in spoken]
            assert not (tmp_path / f"out-{lazy}" / "_work").exists()
        else:
            assert all(c.audio.path.endswith(".npy") for c in clips[lazy])
    tcfg, acfg = cfg.timeline, cfg.annotator
    # a clip at another rate than the session's is refused, not mixed in at the wrong speed
    other = clips[True][0].model_copy(
        update={"audio": clips[True][0].audio.model_copy(update={"sample_rate": 22_050})}
    )
    with pytest.raises(RejectError) as e:
        build_one(planned, [other, *clips[True][1:]], read_samples(clips[True]), tcfg, cfg.run_seed, acfg)
    assert e.value.code == "clip_rate_mismatch"
    eager, lazy = (
        build_one(planned, clips[k], read_samples(clips[k]), tcfg, cfg.run_seed, acfg) for k in (False, True)
    )
    assert lazy.timeline == eager.timeline
    assert np.array_equal(lazy.user_audio, eager.user_audio)
    assert np.array_equal(lazy.assistant_audio, eager.assistant_audio)


def test_build_stage_makes_the_session_or_rejects_it_for_a_failed_utterance(cfg, planned, spooled):
    samples = read_samples(spooled)
    want = build_one(planned, spooled, samples, cfg.timeline, cfg.run_seed, cfg.annotator)
    # an utterance that failed upstream: the session carries that utterance's reject
    rej = Reject(record_id="x", stage="tts", code="tts_failed", detail="engine died")
    failed = [spooled[0].model_copy(update={"audio": None, "reject": rej}), *spooled[1:]]
    sessions = [
        (SID, {"sessions": [Sealed.of(planned)], "clips": [Sealed.of(a) for a in spooled]}),
        ("broken", {"sessions": [Sealed.of(planned)], "clips": [Sealed.of(a) for a in failed]}),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(sessions) | beam.ParDo(BuildSession(cfg)).with_outputs(REJECTS, main="ok")
        built = out.ok | "Durations" >> beam.Map(
            lambda kv: (kv[0], kv[1][1].timeline.duration_samples, len(kv[1][1].timeline.utterances))
        )
        assert_that(
            built,
            equal_to([(SID, want.timeline.duration_samples, len(want.timeline.utterances))]),
            label="built",
        )
        rejects = out[REJECTS] | beam.Map(
            lambda sr: (sr[0], sr[1].record_id, sr[1].stage, sr[1].code, sr[1].extra["failed_utterances"])
        )
        assert_that(
            rejects, equal_to([(_shard(cfg, "broken"), "broken", "tts", "tts_failed", 1)]), label="rej"
        )


def test_serialize_stage_encodes_the_sample_for_its_shard(cfg, planned, spooled):
    built = build_one(planned, spooled, read_samples(spooled), cfg.timeline, cfg.run_seed, cfg.annotator)
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([(SID, (planned, built))])
            | beam.ParDo(SerializeSample(cfg)).with_outputs(REJECTS, main="ok")
        )
        rows = out.ok | beam.Map(
            lambda e: (
                e.shard,
                e.row.seed_id,
                e.row.n_chunks * cfg.timeline.chunk_samples == built.timeline.duration_samples,
                set(REQUIRED_MEMBERS) <= set(e.members),
            )
        )
        assert_that(rows, equal_to([(_shard(cfg, SID), SID, True, True)]), label="rows")
        assert_that(out[REJECTS], equal_to([]), label="no rejects")


def test_write_stage_writes_the_shard_and_its_state_then_resume_reads_the_state(cfg, tmp_path):
    # Two tiny samples (any members: the writer only orders and tars them) and one reject.
    samples = [
        EncodedSample(
            shard=2, key=k, members={"json": f'{{"k": "{k}"}}'.encode(), "txt": b"x"}, row=manifest_row(k, 2)
        )
        for k in ("b-key", "a-key")
    ]
    rej = Reject(record_id="r1", stage="plan", code="no_turns")
    plan = ShardPlan(shard=2, input_digest="d" * 64, n_lines=3)
    grouped = {"plans": [plan], "samples": [Sealed.of(s) for s in samples], "rejects": [rej]}
    out_dir = str(tmp_path / "out")

    def summary(r):
        return (r.shard, [row.seed_id for row in r.rows], [x.code for x in r.rejects], r.skipped)

    with TestPipeline() as p:
        out = (
            p
            | beam.Create([(2, grouped)])
            | beam.ParDo(WriteShard(out_dir, "c" * 64, 4, False))
            | beam.Map(summary)
        )
        assert_that(out, equal_to([(2, ["a-key", "b-key"], ["no_turns"], False)]))
    with open(shard_path(out_dir, 2), "rb") as f:
        assert [k for k, _ in iter_shard(f)] == ["a-key", "b-key"]
    state = load_finished_state(out_dir, 2, config_digest="c" * 64, input_digest="d" * 64)
    assert state is not None and state["n_lines"] == 3
    # A resumed run's plan says skip and carries that state: nothing is written, the rows come back.
    skip = ShardPlan(shard=2, input_digest="d" * 64, n_lines=3, skip=True, state=state)
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([(2, {"plans": [skip], "samples": [], "rejects": []})])
            | beam.ParDo(WriteShard(out_dir, "c" * 64, 4, False))
            | beam.Map(summary)
        )
        assert_that(out, equal_to([(2, ["a-key", "b-key"], ["no_turns"], True)]))
