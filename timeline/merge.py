"""Time-merge: plan a two-speaker session from an annotation, then lay aligned clips on two tracks.

Two steps, because TTS must know what to say before any audio exists:

1. :func:`plan_session` (``Annotation`` -> :class:`SessionPlan`), for the family the annotation
   carries (decided by the annotate stage, never re-decided here): speakers, system
   prompt, every text to speak (turns, pause pieces, fillers, backchannels, barge-ins, requests)
   and every random draw (gaps, pause lengths, stop delays, positions), each recorded as an
   ``AugmentationParam`` with its distribution.
2. :func:`build_session` (plan + ``{utterance id: Clip}`` -> :class:`~duplexloom.schemas.session.BuiltSession`): place the
   clips on the session clock (each clip's :class:`~duplexloom.schemas.ClipUtterance` becomes a
   session :class:`~duplexloom.schemas.Utterance` through ``ClipUtterance.placed_at``), cut interrupted assistant speech, mix each track, pad both to whole
   chunks, and emit the action objects: ``response`` at a user turn's real end, ``interrupt`` at
   the semantic interrupt anchor, ``backchannel`` at the feedback's end, tool calls at the end of
   their anchor's last word (+ a configured delay). The result is validated by
   :func:`duplexloom.timeline.timing.check_timing`.

Placement modes: ``floor`` (sequential: starts ``gap_s`` after everything placed so far ends),
``barge_in`` / ``backchannel`` / ``request`` (overlaid on an assistant ``host`` utterance).

Reject codes: ``no_turns``, ``no_interruption_text``, ``no_tool_actions``,
``no_pause_point``, ``no_overlay_host``, ``anchor_not_in_text``, ``anchor_order``, ``unknown_tool``,
``invalid_arguments`` (from the catalog), ``missing_clip``, ``clip_rate_mismatch``,
``anchor_not_aligned``, ``interrupt_host_too_short``, ``backchannel_host_too_short``,
``timing_violation``, ``no_speaker_for_lang``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from duplexloom.prompts import label_phrases, validate_arguments
from duplexloom.schemas import (
    ActionObject,
    AugmentationParam,
    ClipUtterance,
    RejectError,
    Timeline,
    Utterance,
)
from duplexloom.schemas.annotation import AnnotatedTurn, Annotation
from duplexloom.schemas.plan import Placement, PlannedAction, PlannedUtterance, SessionPlan
from duplexloom.schemas.session import BuiltSession

from . import augment as aug
from .config import Dist, TimelineConfig, bernoulli, session_rng
from .families import SpeakerLibrary, family_system_prompt, pick_speakers
from .sound import cover_sound
from .timing import check_timing

Lang = Literal["zh", "en"]


# ---- records (their home is schemas/plan.py: the plan crosses the session shuffle) ----------
# Re-exported here: ``from duplexloom.timeline.merge import SessionPlan`` keeps working.


@dataclass(frozen=True)
class Clip:
    """A synthesized + aligned utterance: float32 mono audio at the session rate and its utterance
    on the clip's clock (word/char times in samples from the clip's first sample)."""

    utterance: ClipUtterance
    audio: np.ndarray

    def __post_init__(self) -> None:
        # A session-clock Utterance here would be placed a second time: a caller bug, not data.
        if not isinstance(self.utterance, ClipUtterance):
            raise TypeError(f"Clip needs a ClipUtterance (clip clock), got {type(self.utterance).__name__}")
        if self.audio.shape[0] != self.utterance.n_samples:
            raise ValueError(
                f"clip {self.utterance.id}: {self.audio.shape[0]} samples of audio, "
                f"its utterance says {self.utterance.n_samples}"
            )


# ---- planning --------------------------------------------------------------------------------


class _Recorder:
    """Draws values from per-stage generators and records each as an ``AugmentationParam``."""

    def __init__(self, run_seed: int, session_id: str) -> None:
        self.run_seed, self.session_id = run_seed, session_id
        self.params: list[AugmentationParam] = []
        self._rngs: dict[str, np.random.Generator] = {}

    def rng(self, stage: str) -> np.random.Generator:
        # One generator per stage: turning one augmentation off does not shift the others' draws.
        if stage not in self._rngs:
            self._rngs[stage] = session_rng(self.run_seed, self.session_id, f"timeline.{stage}")
        return self._rngs[stage]

    def draw(self, stage: str, name: str, dist: Dist, target: str | None = None) -> float:
        v = round(dist.draw(self.rng(stage)), 6)  # 6 decimals: stable JSON, µs precision is plenty
        self.params.append(AugmentationParam(name=name, value=v, distribution=dist.describe(), target=target))
        return v

    def coin(self, stage: str, name: str, p: float, target: str | None = None) -> bool:
        v = bool(self.rng(stage).random() < p)
        self.params.append(AugmentationParam(name=name, value=v, distribution=bernoulli(p), target=target))
        return v

    def choice(self, stage: str, name: str, options: list[str], target: str | None = None) -> str:
        i = int(self.rng(stage).integers(len(options)))
        self.params.append(
            AugmentationParam(
                name=name, value=options[i], distribution=f"choice(n={len(options)})", target=target
            )
        )
        return options[i]

    def record(self, name: str, value: Any, target: str | None = None, distribution: str = "fixed") -> None:
        self.params.append(
            AugmentationParam(name=name, value=value, distribution=distribution, target=target)
        )


def _label_text(rec: _Recorder, label: str, lang: str, target: str) -> str | None:
    return rec.choice("labels", f"{label}_phrase", label_phrases(label, lang), target)


def _other_lang(lang: str) -> Lang:
    return "en" if lang == "zh" else "zh"


@dataclass
class _Planning:
    """The placement state of one session while it is planned: what every planner reads (the
    annotation, the config, the family, the turns still in play) and appends to (utterances to
    speak, placements, tool actions; every draw goes through ``rec``, whose order is the order of
    ``SessionPlan.augmentation``)."""

    annotation: Annotation
    config: TimelineConfig
    rec: _Recorder
    family: str
    lang: Lang
    turns: list[AnnotatedTurn]
    speak: list[PlannedUtterance] = field(default_factory=list)
    place: list[Placement] = field(default_factory=list)
    actions: list[PlannedAction] = field(default_factory=list)

    def is_request(self, i: int) -> bool:
        """A user turn whose every action is a backchannel_action is a request spoken over the
        previous assistant turn (the assistant keeps talking), not a turn of its own."""
        t = self.turns[i]
        return (
            t.role == "user"
            and bool(t.actions)
            and all(a.pattern == "backchannel_action" for a in t.actions)
            and i > 0
            and self.turns[i - 1].role == "assistant"
        )

    def request_hosts(self) -> set[int]:
        return {i - 1 for i in range(len(self.turns)) if self.is_request(i)}

    def assistant_turns(self) -> list[int]:
        return [i for i, t in enumerate(self.turns) if t.role == "assistant"]


def plan_session(
    annotation: Annotation,
    config: TimelineConfig,
    run_seed: int,
    session_id: str | None = None,
    *,
    library: SpeakerLibrary,
) -> SessionPlan:
    """Decide speakers, texts to speak and every random draw of one session (of the family the
    annotation carries).

    One planner per augmentation chooses where it applies (barge-in, backchannels, pauses), then
    :func:`_lay_out_turns` walks the turns and places every utterance."""
    sid = session_id or annotation.seed_id
    lang: Lang = annotation.lang
    family = annotation.family  # decided once, by the annotate stage
    user_spk, asst_spk = pick_speakers(run_seed, sid, lang, library)
    rec = _Recorder(run_seed, sid)
    rec.record("family", family)
    if not annotation.turns:
        raise RejectError("no_turns", "annotation has no turns")
    st = _Planning(annotation, config, rec, family, lang, list(annotation.turns))
    # Over all annotated turns, before a barge-in cuts the later ones (the backchannel planner then
    # skips turns past the cut).
    request_hosts = st.request_hosts()
    assistant_idx = st.assistant_turns()
    if family == "toolcall" and not any(t.actions for t in st.turns):
        raise RejectError("no_tool_actions", "toolcall family needs at least one annotated tool call")

    interrupted, first_interruption = _choose_barge_in(st, assistant_idx, request_hosts)
    backchannel_at = _choose_backchannels(st, assistant_idx, request_hosts, interrupted)
    pause_split = _choose_pauses(st)
    lead_in, tail = _lay_out_turns(st, interrupted, first_interruption, backchannel_at, pause_split)

    return SessionPlan(
        session_id=sid,
        seed_id=annotation.seed_id,
        run_seed=run_seed,
        family=family,
        lang=lang,
        system_prompt=family_system_prompt(family, lang, asst_spk.display_name),
        user_speaker_id=user_spk.id,
        assistant_speaker_id=asst_spk.id,
        assistant_name=asst_spk.display_name,
        utterances_to_speak=tuple(st.speak),
        placements=tuple(st.place),
        actions=tuple(st.actions),
        lead_in_s=lead_in,
        tail_s=tail,
        augmentation=tuple(rec.params),
    )


def _choose_barge_in(
    st: _Planning, assistant_idx: list[int], request_hosts: set[int]
) -> tuple[int | None, int]:
    """``(interrupted assistant turn or None, index of the first interruption text)``.

    Each assistant turn is barged in on with probability ``barge_in_prob``; the first hit ends the
    seed's turns (the assistant then answers the interruption: ``st.turns`` is cut after it). Only
    turns long enough to still be speaking when the interruption's anchor is heard can host it
    (estimated from the text)."""
    ann, config, rec, family, lang, turns = st.annotation, st.config, st.rec, st.family, st.lang, st.turns
    interrupted: int | None = None
    first_interruption = 0
    if family in config.barge_in_families:
        if not ann.interruptions:
            if family == "interrupt":
                raise RejectError("no_interruption_text", "interrupt family needs annotated interruptions")
        else:

            def need(k: int) -> float:
                anchor = aug.interrupt_anchor(ann.interruptions[k], lang)
                ack = aug.ACK_PHRASES[lang][0] + " "  # the hard case may prefix it
                return (
                    _speech_estimate_s(ack + anchor, lang)
                    + config.stop_delay_s.upper()
                    + config.min_host_tail_s
                )

            # an interruption whose anchor comes early enough for the longest turn, when there is one
            longest = max(
                (_speech_estimate_s(turns[i].text, lang) for i in assistant_idx if i not in request_hosts),
                default=0.0,
            )
            usable = [k for k in range(len(ann.interruptions)) if need(k) <= longest]
            usable = usable or list(range(len(ann.interruptions)))
            first_interruption = usable[int(rec.rng("interrupt").integers(len(usable)))]
            eligible = [
                i
                for i in assistant_idx
                if i not in request_hosts
                and _speech_estimate_s(turns[i].text, lang) >= need(first_interruption)
            ]
            for i in eligible:
                if rec.coin("interrupt", "barge_in", config.barge_in_prob, f"a{i}"):
                    interrupted = i
                    break
            if interrupted is None and family == "interrupt" and config.force_family_augmentation:
                # the longest turn: the best chance that the interruption fits while it speaks
                pool = eligible or [i for i in assistant_idx if i not in request_hosts]
                if pool:
                    interrupted = max(pool, key=lambda i: (_speech_estimate_s(turns[i].text, lang), -i))
                    rec.record("barge_in_forced", True, f"a{interrupted}")
    if family == "interrupt" and interrupted is None:
        raise RejectError("no_overlay_host", "interrupt family: no assistant turn to interrupt")
    if interrupted is not None:
        st.turns = turns[: interrupted + 1]  # the barge-in takes the floor; later turns no longer apply
        rec.record("turns_dropped_after_interrupt", len(ann.turns) - len(st.turns))
    return interrupted, first_interruption


def _choose_backchannels(
    st: _Planning, assistant_idx: list[int], request_hosts: set[int], interrupted: int | None
) -> list[int]:
    """Assistant turns the user backchannels over: each that hosts nothing else, with
    ``backchannel_prob`` (one forced for the backchannel family when none was drawn)."""
    config, rec, family = st.config, st.rec, st.family
    backchannel_at: list[int] = []
    if family in config.backchannel_families:
        eligible = [
            i for i in assistant_idx if i < len(st.turns) and i not in request_hosts and i != interrupted
        ]
        for i in eligible:
            if rec.coin("backchannel", "backchannel", config.backchannel_prob, f"a{i}"):
                backchannel_at.append(i)
        if not backchannel_at and family == "backchannel" and config.force_family_augmentation and eligible:
            backchannel_at = [eligible[int(rec.rng("backchannel").integers(len(eligible)))]]
            rec.record("backchannel_forced", True, f"a{backchannel_at[0]}")
        if family == "backchannel" and not backchannel_at:
            raise RejectError("no_overlay_host", "backchannel family: no assistant turn to speak over")
    return backchannel_at


def _anchor_spans(st: _Planning, i: int) -> list[tuple[int, int]]:
    """Character spans of turn ``i``'s action anchors (a pause may not split one)."""
    turn = st.turns[i]
    spans = []
    for a in turn.actions:
        s = aug.anchor_in_text(turn.text, a.anchor, st.lang)
        if s is None:
            raise RejectError("anchor_not_in_text", f"turn {i}: anchor {a.anchor!r} not in {turn.text!r}")
        spans.append(s)
    return spans


def _choose_pauses(st: _Planning) -> dict[int, int]:
    """``{user floor turn: split character}``: each user floor turn with a split point that keeps
    every anchor in one piece pauses with ``pause_prob`` (one forced for the pause family)."""
    config, rec, family, lang, turns = st.config, st.rec, st.family, st.lang, st.turns
    pause_split: dict[int, int] = {}
    user_floor = [i for i, t in enumerate(turns) if t.role == "user" and not st.is_request(i)]
    # every floor turn's anchors are checked, whatever the family (anchor_not_in_text)
    splittable = {i: aug.split_candidates(turns[i].text, lang, _anchor_spans(st, i)) for i in user_floor}
    if family in config.pause_families:
        for i in user_floor:
            if splittable[i] and rec.coin("pause", "pause", config.pause_prob, f"u{i}"):
                pause_split[i] = splittable[i][int(rec.rng("pause").integers(len(splittable[i])))]
        if not pause_split and family == "pause" and config.force_family_augmentation:
            cands = [i for i in user_floor if splittable[i]]
            if not cands:
                raise RejectError("no_pause_point", "pause family: no user turn can be split")
            i = cands[0]
            pause_split[i] = splittable[i][int(rec.rng("pause").integers(len(splittable[i])))]
            rec.record("pause_forced", True, f"u{i}")
    return pause_split


def _lay_out_turns(
    st: _Planning,
    interrupted: int | None,
    first_interruption: int,
    backchannel_at: list[int],
    pause_split: dict[int, int],
) -> tuple[float, float]:
    """Walk the turns in order and lay out utterances and placements (the overlays chosen above
    go with their host turn); returns ``(lead_in_s, tail_s)``."""
    config, rec, family, lang, turns = st.config, st.rec, st.family, st.lang, st.turns
    lead_in = rec.draw("merge", "lead_in_s", config.lead_in_s)
    tail = rec.draw("merge", "tail_s", config.tail_s)
    prev_role: str | None = None
    for i, t in enumerate(turns):
        if t.role == "assistant":
            text, a_lang = t.text, lang
            if family == "interpret" and i > 0 and turns[i - 1].translation:
                text, a_lang = turns[i - 1].translation or text, _other_lang(lang)
            uid = f"a{i}"
            st.speak.append(
                PlannedUtterance(id=uid, speaker="assistant", lang=a_lang, text=text, turn_index=i)
            )
            if prev_role is None:
                gap = lead_in
            elif prev_role == "user":
                gap = rec.draw("merge", "response_gap_s", config.response_gap_s, uid)
            else:
                gap = rec.draw("merge", "inter_turn_gap_s", config.inter_turn_gap_s, uid)
            st.place.append(Placement(utterance_id=uid, gap_s=gap))
            prev_role = "assistant"
            if i in backchannel_at:
                _plan_backchannel(st, i)
            if i == interrupted:
                _plan_barge_in(st, i, first_interruption)
            continue
        if st.is_request(i):
            pieces = _plan_request(st, i)
        else:
            gap = (
                lead_in
                if prev_role is None
                else rec.draw("merge", "inter_turn_gap_s", config.inter_turn_gap_s, f"u{i}")
            )
            pieces = _plan_user_turn(st, i, gap, pause_split.get(i))
            prev_role = "user"
        _plan_tool_calls(st, i, pieces)
    return lead_in, tail


def _plan_request(st: _Planning, i: int) -> list[tuple[str, str]]:
    """User turn ``i`` spoken over the assistant turn before it; returns its one piece."""
    t, uid = st.turns[i], f"u{i}"
    st.speak.append(
        PlannedUtterance(id=uid, speaker="user", lang=st.lang, text=t.text, kind="request", turn_index=i)
    )
    pos = st.rec.draw("request", "request_position", st.config.request_position, uid)
    st.place.append(Placement(utterance_id=uid, mode="request", host_id=f"a{i - 1}", position=pos))
    return [(uid, t.text)]


def _plan_user_turn(st: _Planning, i: int, gap: float, split: int | None) -> list[tuple[str, str]]:
    """User floor turn ``i`` after ``gap`` seconds: whole, or split at character ``split`` into
    two pieces around a pause (with a filler in it with ``filler_prob``). Returns the pieces
    ``(utterance id, text)`` in order; the last one carries the ``response`` label."""
    config, rec, lang, t = st.config, st.rec, st.lang, st.turns[i]
    if split is None:
        uid = f"u{i}"
        st.speak.append(PlannedUtterance(id=uid, speaker="user", lang=lang, text=t.text, turn_index=i))
        st.place.append(
            Placement(
                utterance_id=uid,
                gap_s=gap,
                label="response",
                label_text=_label_text(rec, "response", lang, uid),
            )
        )
        return [(uid, t.text)]
    first, second = aug.split_text(t.text, lang, split)
    p1, p2 = f"u{i}.1", f"u{i}.2"
    pause = rec.draw("pause", "pause_s", config.pause_s, f"u{i}")
    st.speak.append(PlannedUtterance(id=p1, speaker="user", lang=lang, text=first, turn_index=i))
    st.place.append(Placement(utterance_id=p1, gap_s=gap))
    fillers = list(st.annotation.fillers) or list(aug.FILLERS[lang])
    if rec.coin("pause", "filler", config.filler_prob, f"u{i}"):
        fid = f"u{i}.filler"
        ftext = rec.choice("pause", "filler_text", fillers, fid)
        pre = round(pause * rec.draw("pause", "filler_split", config.filler_split, fid), 6)
        st.speak.append(
            PlannedUtterance(id=fid, speaker="user", lang=lang, text=ftext, kind="filler", turn_index=i)
        )
        st.place.append(Placement(utterance_id=fid, gap_s=pre))
        post = round(pause - pre, 6)
    else:
        post = pause
    st.speak.append(PlannedUtterance(id=p2, speaker="user", lang=lang, text=second, turn_index=i))
    st.place.append(
        Placement(
            utterance_id=p2,
            gap_s=post,
            label="response",
            label_text=_label_text(rec, "response", lang, p2),
        )
    )
    return [(p1, first), (p2, second)]


def _plan_tool_calls(st: _Planning, i: int, pieces: list[tuple[str, str]]) -> None:
    """Tool calls of user turn ``i``, each tied to the piece holding its anchor, in annotation
    order (an anchor before the previous one is ``anchor_order``)."""
    t, lang = st.turns[i], st.lang
    last_pos = (-1, -1)
    for k, a in enumerate(t.actions):
        validate_arguments(a.name, a.parameters)
        holder = None
        for piece_idx, (pid, ptext) in enumerate(pieces):
            span = aug.anchor_in_text(ptext, a.anchor, lang)
            if span is not None:
                holder = (pid, (piece_idx, span[1]))
                break
        if holder is None:
            raise RejectError("anchor_not_in_text", f"turn {i}: anchor {a.anchor!r} not in {t.text!r}")
        if holder[1] < last_pos:
            raise RejectError(
                "anchor_order", f"turn {i}: action {a.name} is anchored before the previous one"
            )
        last_pos = holder[1]
        aid = f"tool{i}.{k}"
        delay = st.rec.draw("tool", "tool_trigger_delay_s", st.config.tool_trigger_delay_s, aid)
        st.actions.append(
            PlannedAction(
                id=aid,
                name=a.name,
                planning=a.planning,
                parameters=dict(a.parameters),
                anchor=a.anchor,
                utterance_id=holder[0],
                pattern=a.pattern,
                delay_s=delay,
                provenance=f"annotation:{st.annotation.provenance.get('actions', 'annotator')}:{a.pattern}",
            )
        )


def _plan_backchannel(st: _Planning, i: int) -> None:
    """The user backchannels over assistant turn ``a{i}``."""
    ann, config, rec, lang = st.annotation, st.config, st.rec, st.lang
    bid = f"bc{i}"
    if rec.coin("backchannel", "ambiguous_ack", config.ambiguous_ack_prob, bid):
        text = aug.ACK_PHRASES[lang][0]
    else:
        text = rec.choice(
            "backchannel", "backchannel_text", list(ann.backchannels) or list(aug.ACK_PHRASES[lang]), bid
        )
    st.speak.append(
        PlannedUtterance(id=bid, speaker="user", lang=lang, text=text, kind="backchannel", turn_index=i)
    )
    pos = rec.draw("backchannel", "backchannel_position", config.backchannel_position, bid)
    gap = rec.draw("backchannel", "backchannel_gap_s", config.backchannel_gap_s, bid)
    st.place.append(
        Placement(
            utterance_id=bid,
            mode="backchannel",
            host_id=f"a{i}",
            position=pos,
            gap_s=gap,
            label="backchannel",
            label_text=_label_text(rec, "backchannel", lang, bid),
        )
    )


# Replies for an interruption when the annotation has none (an LLM annotation of an older prompt):
# the assistant still yields and answers; provenance says so.
_FALLBACK_REPLIES: dict[str, tuple[str, ...]] = {
    "en": (
        "Sure, let us look at that first.",
        "Good point, I will take that into account.",
        "Okay, then let me answer that instead.",
    ),
    "zh": ("好的，那我们先说这个。", "明白了，我换个思路来回答。", "好，那我先回答你这个问题。"),
}


# Rough speaking rates for planning before any audio exists (seconds per word unit).
_SECONDS_PER_UNIT = {"en": 0.28, "zh": 0.2}


def _speech_estimate_s(text: str, lang: str) -> float:
    return len(aug.norm_units(text, lang)) * _SECONDS_PER_UNIT[lang]


def _plan_barge_in(st: _Planning, i: int, first: int) -> None:
    """The user barges in on assistant turn ``a{i}``; the assistant yields and answers the new
    thought (``r{i}``). Each reply is barged in again with ``barge_in_prob`` while unused
    interruptions remain (SPEC 12: every further assistant turn, probability 0.5)."""
    ann, config, rec, lang, speak, place = st.annotation, st.config, st.rec, st.lang, st.speak, st.place
    n = len(ann.interruptions)
    host = f"a{i}"
    for k in range(n):
        idx = (first + k) % n
        suffix = "" if k == 0 else f".{k}"
        iid, rid = f"int{i}{suffix}", f"r{i}{suffix}"
        rec.record("interruption_index", idx, iid, distribution=f"choice(n={n})" if k == 0 else "next")
        text = ann.interruptions[idx]
        # The hard case of SPEC section 8: the same acknowledgement that is a backchannel elsewhere
        # opens an interruption here.
        if not aug.starts_with_ack(text, lang) and rec.coin(
            "interrupt", "ambiguous_ack", config.ambiguous_ack_prob, iid
        ):
            text = aug.ACK_PHRASES[lang][0] + ("，" if lang == "zh" else ", ") + text
        anchor = aug.interrupt_anchor(text, lang)
        rec.record("interrupt_anchor", anchor, iid)
        speak.append(
            PlannedUtterance(id=iid, speaker="user", lang=lang, text=text, kind="interrupt", turn_index=i)
        )
        pos = rec.draw("interrupt", "barge_in_position", config.barge_in_position, iid)
        stop = rec.draw("interrupt", "stop_delay_s", config.stop_delay_s, iid)
        place.append(
            Placement(
                utterance_id=iid,
                mode="barge_in",
                host_id=host,
                position=pos,
                stop_delay_s=stop,
                anchor=anchor,
                label="interrupt",
                label_text=_label_text(rec, "interrupt", lang, iid),
                end_label_text=_label_text(rec, "response", lang, iid),
                follow_up=k > 0,
            )
        )
        if ann.interruption_replies:
            reply = ann.interruption_replies[idx]
        else:
            reply = rec.choice("interrupt", "fallback_reply", list(_FALLBACK_REPLIES[lang]), rid)
        speak.append(PlannedUtterance(id=rid, speaker="assistant", lang=lang, text=reply, kind="turn"))
        gap = rec.draw("merge", "response_gap_s", config.response_gap_s, rid)
        place.append(Placement(utterance_id=rid, gap_s=gap))
        if k + 1 >= n or not rec.coin("interrupt", "barge_in_again", config.barge_in_prob, rid):
            break
        host = rid


# ---- building --------------------------------------------------------------------------------


@dataclass
class _Placing:
    """The placement state of one session while it is built: the clips placed so far on the
    session clock (``placed``/``audio``, in placement ``order``), the derived values recorded for
    ``Timeline.augmentation`` (``params``, appended in order) and the clips' own-clock utterances
    fitted to their sound (``_local``)."""

    plan: SessionPlan
    clips: dict[str, Clip]
    config: TimelineConfig
    params: list[AugmentationParam]
    placed: dict[str, Utterance] = field(default_factory=dict)
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    _local: dict[str, ClipUtterance] = field(default_factory=dict)

    def local_utt(self, uid: str) -> ClipUtterance:
        """Clip ``uid``'s utterance (clip clock) with word ends moved to the end of their sound."""
        if uid not in self._local:
            self._local[uid] = cover_sound(
                self.clips[uid].utterance, self.clips[uid].audio, self.config.sample_rate
            )
        return self._local[uid]

    def put(self, uid: str, onset: int) -> Utterance:
        """Place clip ``uid`` so that its first word starts at ``onset`` (leading silence before it)."""
        plan = self.plan
        pu = plan.utterance(uid)
        a = np.asarray(self.clips[uid].audio, dtype=np.float32)
        loc = self.local_utt(uid)
        start = max(0, onset - aug.speech_start(loc))
        utt = loc.placed_at(start).model_copy(
            update={
                "id": uid,
                "speaker": pu.speaker,
                "speaker_id": plan.user_speaker_id if pu.speaker == "user" else plan.assistant_speaker_id,
                "lang": pu.lang,
                "kind": pu.kind,
                "turn_index": pu.turn_index,
            }
        )
        self.placed[uid], self.audio[uid] = utt, a
        self.order.append(uid)
        return utt

    def derive(self, name: str, value: Any, target: str) -> None:
        """Record a value that placement derived (not drawn) for utterance ``target``."""
        self.params.append(AugmentationParam(name=name, value=value, distribution="derived", target=target))

    def cut(self, host: Utterance, cut: int) -> None:
        """Cut the placed ``host`` at session sample ``cut`` (its words and its audio, faded)."""
        config = self.config
        self.placed[host.id] = aug.cut_utterance(host, cut)
        self.audio[host.id] = aug.cut_audio(
            self.audio[host.id],
            cut - host.audio_start_samples,
            int(config.fade_ms * config.sample_rate / 1000),
        )


def build_session(
    plan: SessionPlan, clips: dict[str, Clip], config: TimelineConfig, run_seed: int
) -> BuiltSession:
    """Place every planned clip on the session clock, mix the two tracks and emit the actions.

    ``run_seed`` must be the seed the plan was made with (checked: a mismatch is a caller bug).
    """
    if run_seed != plan.run_seed:
        raise ValueError(f"build_session run_seed {run_seed} != plan run_seed {plan.run_seed}")
    sr = config.sample_rate
    for u in plan.utterances_to_speak:
        clip = clips.get(u.id)
        if clip is None:
            raise RejectError("missing_clip", f"no synthesized clip for {u.id}")
        if clip.audio.ndim != 1:
            raise RejectError("clip_rate_mismatch", f"clip {u.id} is not mono")

    st = _Placing(plan, clips, config, params=list(plan.augmentation))
    actions: list[ActionObject] = []
    floor_end = 0

    for p in plan.placements:
        if p.mode == "floor":
            start = (config.samples(plan.lead_in_s) if not st.order else floor_end) + (
                0 if not st.order else config.samples(p.gap_s)
            )
            utt = st.put(p.utterance_id, start)
        else:
            host = st.placed.get(p.host_id or "")
            if host is None:
                raise ValueError(f"placement {p.utterance_id}: host {p.host_id} not placed before it")
            utt = _OVERLAY_PLACERS[p.mode](st, p, host)
            if utt is None:  # a follow-up barge-in that does not fit: the chain ends here
                st.derive("barge_in_chain_ended", True, p.utterance_id)
                break
        # Gaps run from the end of speech, not of the clip: TTS clips carry trailing silence.
        floor_end = max(floor_end, aug.speech_end(utt))
        if p.label == "response":
            actions.append(_label(p, "response", aug.speech_end(utt), utt.id))
        elif p.label == "backchannel":
            actions.append(_label(p, "backchannel", aug.speech_end(utt), utt.id))
        elif p.label == "interrupt":
            anchor_t = aug.anchor_end_samples(utt, p.anchor or "")
            actions.append(_label(p, "interrupt", anchor_t, utt.id, anchor=p.anchor))
            # the interruption is also a turn: the assistant answers it after it ends
            end = Placement(utterance_id=utt.id, label_text=p.end_label_text)
            actions.append(_label(end, "response", aug.speech_end(utt), utt.id))

    for pa in plan.actions:
        utt = st.placed[pa.utterance_id]
        t = aug.anchor_end_samples(utt, pa.anchor) + config.samples(pa.delay_s)
        actions.append(
            ActionObject(
                id=pa.id,
                name=pa.name,
                offset_samples=t,
                planning=pa.planning,
                parameters=pa.parameters,
                anchor=pa.anchor,
                anchor_utterance_id=pa.utterance_id,
                provenance=pa.provenance,
            )
        )

    end = max((u.audio_end_samples for u in st.placed.values()), default=0) + config.samples(plan.tail_s)
    chunk = config.chunk_samples
    duration = -(-end // chunk) * chunk
    tracks = {"user": np.zeros(duration, np.float32), "assistant": np.zeros(duration, np.float32)}
    for uid in st.order:
        u = st.placed[uid]
        a = st.audio[uid]
        tracks[u.speaker][u.audio_start_samples : u.audio_start_samples + a.shape[0]] += a
    for tr in tracks.values():
        # Overlapping user clips may sum over full scale; minimum/maximum in place beat np.clip here.
        np.minimum(tr, 1.0, out=tr)
        np.maximum(tr, -1.0, out=tr)

    utterances = tuple(sorted(st.placed.values(), key=lambda u: (u.audio_start_samples, u.id)))
    timeline = Timeline(
        session_id=plan.session_id,
        sample_rate=sr,
        duration_samples=duration,
        family=plan.family,
        lang=plan.lang,
        utterances=utterances,
        actions=tuple(sorted(actions, key=lambda a: (a.offset_samples, a.id))),
        augmentation=tuple(st.params),
    )
    violations = check_timing(timeline, config, tracks["assistant"])
    if violations:
        raise RejectError("timing_violation", "; ".join(v.describe() for v in violations[:5]))
    return BuiltSession(timeline=timeline, user_audio=tracks["user"], assistant_audio=tracks["assistant"])


def _label(p: Placement, name: str, t: int, uid: str, anchor: str | None = None) -> ActionObject:
    return ActionObject(
        id=f"{name}:{uid}",
        name=name,
        offset_samples=t,
        text=p.label_text,
        anchor=anchor,
        anchor_utterance_id=uid,
        provenance=f"rule:timeline.{name}",
    )


def _place_backchannel(st: _Placing, p: Placement, host: Utterance) -> Utterance:
    """A backchannel over ``host``: after a word boundary near ``position``, leaving the host
    enough speech after the feedback's end."""
    config = st.config
    h_start, h_end = aug.speech_start(host), aug.speech_end(host)
    n = len(host.words)
    if n == 0:
        start = h_start + int((h_end - h_start) * (p.position or 0.0))
    else:
        # After a word boundary, leaving the assistant a few more words to keep speaking -- and
        # speaking past the feedback's end (SPEC 8: it keeps speaking its plan over it).
        k = min(int((p.position or 0.0) * n), max(0, n - 1 - config.backchannel_min_words_after))
        fb = st.local_utt(p.utterance_id)
        need = aug.speech_end(fb) - aug.speech_start(fb) + config.samples(config.backchannel_host_after_s)
        gap = config.samples(p.gap_s)
        while k > 0 and h_end - (host.words[k].end_samples + gap) < need:
            k -= 1
        if h_end - (host.words[k].end_samples + gap) < need:
            raise RejectError(
                "backchannel_host_too_short",
                f"{host.id} has {(h_end - host.words[0].end_samples) / config.sample_rate:.2f} s after its "
                f"first word, the feedback {p.utterance_id} needs {need / config.sample_rate:.2f} s",
            )
        start = host.words[k].end_samples + gap
        st.derive("backchannel_after_word", k, p.utterance_id)
    return st.put(p.utterance_id, start)


def _place_request(st: _Placing, p: Placement, host: Utterance) -> Utterance:
    """A request over ``host``, starting at ``position`` of the host's speech."""
    h_start, h_end = aug.speech_start(host), aug.speech_end(host)
    return st.put(p.utterance_id, h_start + int((h_end - h_start) * (p.position or 0.0)))


def _place_barge_in(st: _Placing, p: Placement, host: Utterance) -> Utterance | None:
    """A barge-in on ``host`` (SPEC 8): the user starts at a fraction of the host's speech;
    <interrupt> sits at the end of the semantic anchor; the host speaks through the label's chunk
    and stops stop_delay after that chunk starts (1-3 chunks later), and still had at least
    min_host_tail_s to say. The host is cut there. ``None``: a follow-up barge-in that does not
    fit its host."""
    config = st.config
    h_start, h_end = aug.speech_start(host), aug.speech_end(host)
    chunk = config.chunk_samples
    stop_delay = config.samples(p.stop_delay_s or 0.0)
    loc = st.local_utt(p.utterance_id)
    anchor_rel = aug.anchor_end_samples(loc, p.anchor or "") - aug.speech_start(loc)
    onset = h_start + int((h_end - h_start) * (p.position or 0.0))
    # floor(label / chunk) * chunk <= label, so a label at latest_label keeps the stop in bounds
    latest_label = h_end - config.samples(config.min_host_tail_s) - stop_delay
    if onset + anchor_rel > latest_label:
        onset = latest_label - anchor_rel
        st.derive("barge_in_onset_clamped", True, p.utterance_id)
    if onset < h_start:
        if p.follow_up:
            return None
        raise RejectError(
            "interrupt_host_too_short",
            f"{host.id} speaks {(h_end - h_start) / config.sample_rate:.2f} s: the interruption's anchor "
            f"({anchor_rel / config.sample_rate:.2f} s in) plus the stop do not fit",
        )

    # The assistant must be audibly speaking at the end of the label's chunk and when it is cut
    # (a cut inside its own pause would be a stop before the label): nudge the onset, nearest first.
    def speaking(t: int) -> bool:
        return any(w.start_samples <= t < w.end_samples for w in host.words)

    def fits(o: int) -> bool:
        c = (o + anchor_rel) // chunk
        return speaking((c + 1) * chunk - 1) and speaking(c * chunk + stop_delay - 1)

    step = config.samples(0.02)
    for k in range(0, 31):
        cands = [onset - k * step, onset + k * step] if k else [onset]
        ok = [o for o in cands if h_start <= o and o + anchor_rel <= latest_label and fits(o)]
        if ok:
            if k:
                st.derive(
                    "barge_in_onset_nudged_s", round((ok[0] - onset) / config.sample_rate, 6), p.utterance_id
                )
            onset = ok[0]
            break
    label_t = onset + anchor_rel
    cut = label_t // chunk * chunk + stop_delay
    st.derive("interrupt_stop_after_label_s", round((cut - label_t) / config.sample_rate, 6), p.utterance_id)
    st.cut(host, cut)
    return st.put(p.utterance_id, onset)


# Placement mode -> its placer (``floor`` is placed by build_session itself).
_OVERLAY_PLACERS: dict[str, Callable[[_Placing, Placement, Utterance], Utterance | None]] = {
    "backchannel": _place_backchannel,
    "request": _place_request,
    "barge_in": _place_barge_in,
}
