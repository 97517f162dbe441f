"""The session plan: everything about one session decided before any audio exists.

Made by ``timeline.merge.plan_session`` (stage ``plan``) from an :class:`~.annotation.Annotation`;
it crosses the session shuffle to the TTS and build stages, so it lives here with the other records
that travel between stages. A :class:`SessionPlan` holds the texts to speak
(:class:`PlannedUtterance`), where each goes (:class:`Placement`: ``floor`` sequentially after a
gap, or ``barge_in``/``backchannel``/``request`` over an assistant host) and the tool calls tied to
their anchors (:class:`PlannedAction`), plus every random draw as an ``AugmentationParam``.
No reject codes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Record
from .seed import Lang
from .timeline import AugmentationParam
from .utterance import UtteranceKind


class PlannedUtterance(Record):
    """One text to synthesize and align: ``id`` keys its :class:`Clip` in :func:`build_session`."""

    id: str
    speaker: Literal["user", "assistant"]
    lang: Lang
    text: str
    kind: UtteranceKind = "turn"
    turn_index: int | None = None


class Placement(Record):
    """Where one planned utterance goes (see module docstring for the modes)."""

    utterance_id: str
    mode: Literal["floor", "barge_in", "backchannel", "request"] = "floor"
    gap_s: float = 0.0  # floor: silence after everything placed so far
    host_id: str | None = None  # overlay modes: the assistant utterance spoken over
    position: float | None = None  # overlay: fraction of the host's audio (barge_in/request) or words
    stop_delay_s: float | None = None  # barge_in: <interrupt> label chunk start -> assistant stop
    anchor: str | None = None  # barge_in: semantic interrupt anchor words
    label: Literal["response", "interrupt", "backchannel"] | None = None
    label_text: str | None = None  # paraphrase of the label (seeded)
    # barge_in: the interruption is a turn of its own too: <response> at its end (paraphrase)
    end_label_text: str | None = None
    # barge_in on a reply to an earlier interruption: when the reply is too short for it, this and
    # every later placement (the rest of the barge-in chain, always the session's tail) are dropped
    follow_up: bool = False


class PlannedAction(Record):
    """A tool call from the annotation, tied to the planned utterance holding its anchor."""

    id: str
    name: str
    planning: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    anchor: str
    utterance_id: str
    pattern: Literal["single", "multi", "backchannel_action"] = "single"
    delay_s: float = 0.0
    provenance: str = "annotation"


class SessionPlan(Record):
    """Everything decidable before audio exists (frozen, picklable: it crosses Beam workers)."""

    session_id: str
    seed_id: str
    run_seed: int
    family: str
    lang: Lang
    system_prompt: str
    user_speaker_id: str
    assistant_speaker_id: str
    assistant_name: str
    utterances_to_speak: tuple[PlannedUtterance, ...]
    placements: tuple[Placement, ...]
    actions: tuple[PlannedAction, ...] = ()
    lead_in_s: float
    tail_s: float
    augmentation: tuple[AugmentationParam, ...] = ()

    def utterance(self, utterance_id: str) -> PlannedUtterance:
        for u in self.utterances_to_speak:
            if u.id == utterance_id:
                return u
        raise KeyError(utterance_id)
