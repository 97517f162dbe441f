"""Stage ``build``: the session's plan + its aligned clips -> a two-track session (``BuiltSession``).

Input: per session id, its sealed :class:`~duplexloom.schemas.session.PlannedSession` and every sealed
:class:`~duplexloom.schemas.clip.AlignedClip` (its samples are read back from the clip's
``AudioRef``, one session at a time; each clip becomes a ``timeline.merge.Clip``: its samples and its
:class:`~duplexloom.schemas.ClipUtterance`, spans on the clip's clock).
Output: ``(seed_id, (PlannedSession, BuiltSession))`` (both in ``schemas/session.py``); rejects ``(shard, Reject)``. One session gives
at most one reject: when utterances failed in TTS or alignment, the session is rejected with the
first failing utterance's reject (its stage and code kept; ``extra`` counts the failures).
Calls ``duplexloom.timeline.merge.build_session(plan, clips, TimelineConfig, run_seed)``, then adds
the annotation's cognition as ``think`` actions (``timeline.cognition.with_think_actions``, for the
families in ``timeline.think_families``; offline cognition first re-cut at the seconds the user
really spoke, ``annotators.cognition.on_session_clock``).
Reject codes: the TTS and aligner codes, ``clip_rate_mismatch`` (a clip's ``AudioRef`` at another
rate than the session's), ``build_session``'s (``missing_clip``, ``anchor_not_aligned``,
``interrupt_host_too_short``, ``timing_violation``, ...) and the re-cut stream's ``cognition_*``
checks.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np

from duplexloom.annotators.cognition import on_session_clock
from duplexloom.annotators.config import AnnotatorConfig
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.spool import read_clip_audio
from duplexloom.pipelines.stage_runtime import timed
from duplexloom.pipelines.transport import prepare_worker, unpack_spans
from duplexloom.schemas import ClipUtterance, RejectError
from duplexloom.schemas.clip import AlignedClip
from duplexloom.schemas.session import BuiltSession, PlannedSession
from duplexloom.timeline.cognition import with_think_actions
from duplexloom.timeline.config import TimelineConfig
from duplexloom.timeline.merge import Clip, build_session

STAGE = "build"


def clip_utterance(ps: PlannedSession, clip: AlignedClip) -> ClipUtterance:
    """The planned utterance of ``clip`` with its aligned spans (clip clock) and its clip's length."""
    pu = ps.plan.utterance(clip.utterance_id)
    return ClipUtterance(
        id=pu.id,
        speaker=pu.speaker,
        speaker_id=(ps.user if pu.speaker == "user" else ps.assistant).id,
        lang=pu.lang,
        text=pu.text,
        kind=pu.kind,
        turn_index=pu.turn_index,
        words=unpack_spans(clip.words),
        chars=unpack_spans(clip.chars),
        n_samples=clip.audio.n_samples,
        align_confidence=clip.confidence,
    )


def make_clips(
    ps: PlannedSession, aligned: list[AlignedClip], samples: dict[str, np.ndarray]
) -> dict[str, Clip]:
    """``{utterance id: Clip}`` for ``build_session``; ``samples`` holds each clip's audio."""
    return {a.utterance_id: Clip(clip_utterance(ps, a), samples[a.utterance_id]) for a in aligned}


def read_samples(aligned: list[AlignedClip]) -> dict[str, np.ndarray]:
    """Every clip's samples, read from its ``AudioRef`` (a spooled copy or the TTS cache)."""
    return {a.utterance_id: read_clip_audio(a.audio) for a in aligned}


def build_one(
    ps: PlannedSession,
    aligned: list[AlignedClip],
    samples: dict[str, np.ndarray],
    tcfg: TimelineConfig,
    run_seed: int,
    acfg: AnnotatorConfig | None = None,
) -> BuiltSession:
    """The session of ``ps`` built from its aligned clips, with its cognition as ``think`` actions
    (``acfg``: the offline annotator's notes are cut at the built session's real seconds)."""
    for a in aligned:
        if a.audio.sample_rate != tcfg.sample_rate:
            raise RejectError(
                "clip_rate_mismatch",
                f"clip {a.utterance_id}: {a.audio.sample_rate} Hz, the session's rate is {tcfg.sample_rate} Hz",
            )
    built = build_session(ps.plan, make_clips(ps, aligned, samples), tcfg, run_seed)
    ann = ps.annotation
    if acfg is not None and built.timeline.family in tcfg.think_families:
        ann = on_session_clock(ann, built.timeline, acfg)  # offline notes: cut at the real seconds
    tl = with_think_actions(built.timeline, ann, tcfg.think_families, tcfg.think_sources)
    if tl is built.timeline:
        return built
    return dataclasses.replace(built, timeline=tl)


class BuildSession(beam.DoFn):
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        prepare_worker()
        self.tcfg = self.cfg.timeline
        self.acfg = self.cfg.annotator

    def process(self, kv):
        seed_id, grouped = kv
        sessions = list(grouped["sessions"])
        if len(sessions) != 1:
            raise RuntimeError(f"session {seed_id}: expected one plan, got {len(sessions)}")
        ps = sessions[0].open()
        aligned = sorted((a.open() for a in grouped["clips"]), key=lambda a: a.utterance_id)
        shard = shard_of(sample_key(seed_id), self.cfg.shards.num_shards)
        failed = [a.reject for a in aligned if a.reject is not None]
        if failed:
            first = failed[0]
            extra = {**first.extra, "failed_utterances": len(failed)}
            yield beam.pvalue.TaggedOutput(
                REJECTS, (shard, first.model_copy(update={"record_id": seed_id, "extra": extra}))
            )
            return
        # Clips arrive sealed, as spool or TTS-cache references (pipelines/spool.py); their audio is
        # read back one session at a time.
        samples = read_samples(aligned)
        with timed(STAGE):
            built, rej = call_routed(
                STAGE,
                seed_id,
                build_one,
                ps,
                aligned,
                samples,
                self.tcfg,
                self.cfg.run_seed,
                self.acfg,
                policy=self.cfg.on_internal_error,
            )
        if rej is not None:
            yield beam.pvalue.TaggedOutput(REJECTS, (shard, rej))
            return
        yield (seed_id, (ps, built))
