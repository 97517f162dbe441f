"""One session between stages: planned (plan -> build) and built (build -> serialize).

:class:`PlannedSession` crosses the session shuffle (sealed, ``pipelines/transport.py``): the seed,
its annotation (which carries the decided family), the plan (``timeline.merge.plan_session``) and
the two voices the plan chose. :class:`BuiltSession` is what ``timeline.merge.build_session`` makes
of the plan and the aligned clips: the session's timeline (every utterance on the session clock,
every action, every drawn value) and its two tracks. It holds arrays and stays inside one worker
(build and serialize are fused), so it is a frozen dataclass, not a pydantic record.
No reject codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .annotation import Annotation
from .base import Record
from .plan import SessionPlan
from .seed import Seed
from .speaker import Speaker
from .timeline import Timeline


class PlannedSession(Record):
    """A session between the plan and build stages: its seed, annotation, plan and two voices."""

    seed: Seed
    annotation: Annotation
    plan: SessionPlan
    user: Speaker
    assistant: Speaker


@dataclass(frozen=True)
class BuiltSession:
    """A built session: its timeline and the two float32 tracks, both whole chunks long."""

    timeline: Timeline
    user_audio: np.ndarray
    assistant_audio: np.ndarray
