"""Stage ``build``: the session's plan + its aligned clips -> a two-track :class:`BuiltSession`.

Input: per session id, its :class:`~.plan.PlannedSession` and every :class:`~.align.Aligned` clip.
Output: ``(seed_id, (PlannedSession, BuiltSession))``; rejects ``(shard, Reject)``. One session gives
at most one reject: when utterances failed in TTS or alignment, the session is rejected with the
first failing utterance's reject (its stage and code kept; ``extra`` counts the failures).
Calls ``duplexloom.timeline.merge.build_session(plan, clips, TimelineConfig, run_seed)``, then adds
the annotation's cognition as ``think`` actions (``timeline.cognition.with_think_actions``, for the
families in ``timeline.think_families``; offline cognition first re-cut at the seconds the user
really spoke, ``annotators.cognition.on_session_clock``).
Reject codes: the TTS and aligner codes, ``build_session``'s (``missing_clip``,
``anchor_not_aligned``, ``interrupt_host_too_short``, ``timing_violation``, ...) and the re-cut
stream's ``cognition_*`` checks.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from duplexloom.pipelines.align import unpack_spans
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.memory import pin_mmap_threshold
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.spool import load_clip
from duplexloom.pipelines.stage_runtime import timed
from duplexloom.schemas import Utterance

STAGE = "build"


def make_clips(ps, aligned: list) -> dict:
    from duplexloom.timeline.merge import Clip

    clips = {}
    for a in aligned:
        pu = ps.plan.utterance(a.item.utterance_id)
        utt = Utterance(
            id=pu.id,
            speaker=pu.speaker,
            speaker_id=a.item.speaker.id,
            lang=pu.lang,
            text=pu.text,
            kind=pu.kind,
            turn_index=pu.turn_index,
            words=unpack_spans(a.words),
            chars=unpack_spans(a.chars),
            audio_start_samples=0,
            audio_end_samples=int(a.audio.shape[0]),
            align_confidence=a.confidence,
        )
        clips[pu.id] = Clip(utterance=utt, audio=a.audio)
    return clips


def build_one(ps, aligned: list, tcfg, run_seed: int, acfg=None):
    from duplexloom.annotators.cognition import on_session_clock
    from duplexloom.timeline.cognition import with_think_actions
    from duplexloom.timeline.merge import build_session

    built = build_session(ps.plan, make_clips(ps, aligned), tcfg, run_seed)
    ann = ps.annotation
    if acfg is not None and built.timeline.family in tcfg.think_families:
        ann = on_session_clock(ann, built.timeline, acfg)  # offline notes: cut at the real seconds
    tl = with_think_actions(built.timeline, ann, tcfg.think_families, tcfg.think_sources)
    if tl is built.timeline:
        return built
    # BuiltSession is a dataclass; a record with model_copy would do as well.
    return (
        built.model_copy(update={"timeline": tl})
        if hasattr(built, "model_copy")
        else dataclasses.replace(built, timeline=tl)
    )


class BuildSession(beam.DoFn):
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        pin_mmap_threshold()  # flat worker memory, see pipelines/memory.py
        self.tcfg = self.cfg.timeline_config()
        self.acfg = self.cfg.annotator_config()

    def process(self, kv):
        seed_id, grouped = kv
        sessions = list(grouped["sessions"])
        if len(sessions) != 1:
            raise RuntimeError(f"session {seed_id}: expected one plan, got {len(sessions)}")
        ps = sessions[0].open()
        # Clips arrive sealed, as spool or TTS-cache references (pipelines/spool.py); their audio is
        # read back one session at a time.
        aligned = sorted((load_clip(a.open()) for a in grouped["clips"]), key=lambda a: a.item.utterance_id)
        shard = shard_of(sample_key(seed_id), self.cfg.shards.num_shards)
        failed = [a.reject for a in aligned if a.reject is not None]
        if failed:
            first = failed[0]
            extra = {**first.extra, "failed_utterances": len(failed)}
            yield beam.pvalue.TaggedOutput(
                REJECTS, (shard, first.model_copy(update={"record_id": seed_id, "extra": extra}))
            )
            return
        with timed(STAGE):
            built, rej = call_routed(
                STAGE,
                seed_id,
                build_one,
                ps,
                aligned,
                self.tcfg,
                self.cfg.run_seed,
                self.acfg,
                policy=self.cfg.on_internal_error,
            )
        if rej is not None:
            yield beam.pvalue.TaggedOutput(REJECTS, (shard, rej))
            return
        yield (seed_id, (ps, built))
