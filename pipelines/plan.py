"""Stage ``plan``: annotation -> session plan + the session's two voices.

Input: ``(seed_id, (Seed, Annotation))``. Output: ``(seed_id, Sealed(PlannedSession))`` (:class:`~duplexloom.schemas.session.PlannedSession`) and, on the
``speak`` tag, one :class:`~duplexloom.schemas.clip.SpeakRequest` per utterance the plan needs
spoken (the TTS stage's input); rejects ``(shard, Reject)`` on the ``rejects`` tag.
Calls ``duplexloom.timeline.merge.plan_session(annotation, TimelineConfig, run_seed, library=...)``
(the seeded speaker pair, texts to speak and every random draw, for the family the annotation
carries: decided once by the annotate stage, read, never re-decided here).
Reject codes: those of ``plan_session``, ``no_speaker_for_lang``.
"""

from __future__ import annotations

import apache_beam as beam

from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.stage_runtime import timed
from duplexloom.pipelines.transport import seal
from duplexloom.schemas.clip import SpeakRequest
from duplexloom.schemas.session import PlannedSession
from duplexloom.timeline.merge import plan_session
from duplexloom.tts_adapters.speakers import load_library

STAGE = "plan"
SPEAK = "speak"


def plan_one(seed, annotation, tcfg, run_seed: int, library) -> PlannedSession:
    plan = plan_session(annotation, tcfg, run_seed, library=library)
    return PlannedSession(
        seed=seed,
        annotation=annotation,
        plan=plan,
        user=library.by_id(plan.user_speaker_id),
        assistant=library.by_id(plan.assistant_speaker_id),
    )


def speak_requests(ps: PlannedSession) -> list[SpeakRequest]:
    """One request per utterance of the plan, in the plan's order, each with its speaker's voice."""
    return [
        SpeakRequest(
            session_id=ps.annotation.seed_id,
            utterance_id=u.id,
            role=u.speaker,
            lang=u.lang,
            text=u.text,
            speaker=ps.user if u.speaker == "user" else ps.assistant,
        )
        for u in ps.plan.utterances_to_speak
    ]


class PlanSession(beam.DoFn):
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.tcfg = self.cfg.timeline
        self.library = load_library(self.cfg.tts.speaker_library)

    def process(self, kv):
        seed_id, (seed, annotation) = kv
        with timed(STAGE):
            ps, rej = call_routed(
                STAGE,
                seed_id,
                plan_one,
                seed,
                annotation,
                self.tcfg,
                self.cfg.run_seed,
                self.library,
                policy=self.cfg.on_internal_error,
            )
        if rej is not None:
            yield beam.pvalue.TaggedOutput(
                REJECTS, (shard_of(sample_key(seed_id), self.cfg.shards.num_shards), rej)
            )
            return
        yield (seed_id, seal(ps))  # opened by Build, after the session shuffle
        for request in speak_requests(ps):
            yield beam.pvalue.TaggedOutput(SPEAK, request)
