"""Time-merge: plan a two-speaker session from an annotation, then lay aligned clips on two tracks.

Two steps, because TTS must know what to say before any audio exists:

1. :func:`plan_session` (``Annotation`` -> :class:`SessionPlan`): the family, speakers, system
   prompt, every text to speak (turns, pause pieces, fillers, backchannels, barge-ins, requests)
   and every random draw (gaps, pause lengths, stop delays, positions), each recorded as an
   ``AugmentationParam`` with its distribution.
2. :func:`build_session` (plan + ``{utterance id: Clip}`` -> :class:`BuiltSession`): place the
   clips on the session clock, cut interrupted assistant speech, mix each track, pad both to whole
   chunks, and emit the action objects: ``response`` at a user turn's real end, ``interrupt`` at
   the semantic interrupt anchor, ``backchannel`` at the feedback's end, tool calls at the end of
   their anchor's last word (+ a configured delay). The result is validated by
   :func:`duplexloom.timeline.timing.check_timing`.

Placement modes: ``floor`` (sequential: starts ``gap_s`` after everything placed so far ends),
``barge_in`` / ``backchannel`` / ``request`` (overlaid on an assistant ``host`` utterance).

Reject codes: ``unknown_family``, ``no_turns``, ``no_interruption_text``, ``no_tool_actions``,
``no_pause_point``, ``no_overlay_host``, ``anchor_not_in_text``, ``anchor_order``, ``unknown_tool``,
``invalid_arguments`` (from the catalog), ``missing_clip``, ``clip_rate_mismatch``,
``anchor_not_aligned``, ``interrupt_host_too_short``, ``backchannel_host_too_short``,
``timing_violation``, ``no_speaker_for_lang``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from duplexloom.schemas import ActionObject, AugmentationParam, RejectError, Timeline, Utterance
from duplexloom.schemas.annotation import Annotation
from duplexloom.schemas.base import Record
from duplexloom.schemas.utterance import UtteranceKind

from . import augment as aug
from .config import Dist, TimelineConfig, bernoulli, session_rng
from .families import choose_family, family_system_prompt, pick_speakers
from .sound import cover_sound

if TYPE_CHECKING:
    from duplexloom.tts_adapters.speakers import SpeakerLibrary

Lang = Literal["zh", "en"]


# ---- records ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Clip:
    """A synthesized + aligned utterance: float32 mono audio at the session rate and its record with
    utterance-local word/char times in samples."""

    utterance: Utterance
    audio: np.ndarray


@dataclass(frozen=True)
class BuiltSession:
    timeline: Timeline
    user_audio: np.ndarray  # float32, length = whole chunks
    assistant_audio: np.ndarray


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
    from duplexloom.prompts import label_phrases

    return rec.choice("labels", f"{label}_phrase", label_phrases(label, lang), target)


def _other_lang(lang: str) -> Lang:
    return "en" if lang == "zh" else "zh"


def plan_session(
    annotation: Annotation,
    config: TimelineConfig,
    run_seed: int,
    session_id: str | None = None,
    library: SpeakerLibrary | None = None,
) -> SessionPlan:
    """Decide family, speakers, texts to speak and every random draw of one session."""
    from duplexloom.prompts import validate_arguments

    sid = session_id or annotation.seed_id
    lang: Lang = annotation.lang
    family = choose_family(annotation.family, config, run_seed, sid)
    user_spk, asst_spk = pick_speakers(run_seed, sid, lang, library)
    rec = _Recorder(run_seed, sid)
    rec.record("family", family)
    turns = list(annotation.turns)
    if not turns:
        raise RejectError("no_turns", "annotation has no turns")

    # A user turn whose every action is a backchannel_action is a request spoken over the previous
    # assistant turn (the assistant keeps talking), not a turn of its own.
    def is_request(i: int) -> bool:
        t = turns[i]
        return (
            t.role == "user"
            and bool(t.actions)
            and all(a.pattern == "backchannel_action" for a in t.actions)
            and i > 0
            and turns[i - 1].role == "assistant"
        )

    request_hosts = {i - 1 for i in range(len(turns)) if is_request(i)}
    assistant_idx = [i for i, t in enumerate(turns) if t.role == "assistant"]

    if family == "toolcall" and not any(t.actions for t in turns):
        raise RejectError("no_tool_actions", "toolcall family needs at least one annotated tool call")

    # --- barge-in: each assistant turn with probability barge_in_prob; the first hit ends the seed's
    # turns (the assistant then answers the interruption). Only turns long enough to still be
    # speaking when the interruption's anchor is heard can host it (estimated from the text).
    interrupted: int | None = None
    first_interruption = 0
    if family in config.barge_in_families:
        if not annotation.interruptions:
            if family == "interrupt":
                raise RejectError("no_interruption_text", "interrupt family needs annotated interruptions")
        else:

            def need(k: int) -> float:
                anchor = aug.interrupt_anchor(annotation.interruptions[k], lang)
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
            usable = [k for k in range(len(annotation.interruptions)) if need(k) <= longest]
            usable = usable or list(range(len(annotation.interruptions)))
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
        turns = turns[: interrupted + 1]  # the barge-in takes the floor; later turns no longer apply
        rec.record("turns_dropped_after_interrupt", len(annotation.turns) - len(turns))

    # --- backchannels: per assistant turn that hosts nothing else.
    backchannel_at: list[int] = []
    if family in config.backchannel_families:
        eligible = [
            i for i in assistant_idx if i < len(turns) and i not in request_hosts and i != interrupted
        ]
        for i in eligible:
            if rec.coin("backchannel", "backchannel", config.backchannel_prob, f"a{i}"):
                backchannel_at.append(i)
        if not backchannel_at and family == "backchannel" and config.force_family_augmentation and eligible:
            backchannel_at = [eligible[int(rec.rng("backchannel").integers(len(eligible)))]]
            rec.record("backchannel_forced", True, f"a{backchannel_at[0]}")
        if family == "backchannel" and not backchannel_at:
            raise RejectError("no_overlay_host", "backchannel family: no assistant turn to speak over")

    # --- pauses: per user floor turn with a split point that keeps every anchor in one piece.
    def forbidden_spans(i: int) -> list[tuple[int, int]]:
        spans = []
        for a in turns[i].actions:
            s = aug.anchor_in_text(turns[i].text, a.anchor, lang)
            if s is None:
                raise RejectError(
                    "anchor_not_in_text", f"turn {i}: anchor {a.anchor!r} not in {turns[i].text!r}"
                )
            spans.append(s)
        return spans

    pause_split: dict[int, int] = {}
    user_floor = [i for i, t in enumerate(turns) if t.role == "user" and not is_request(i)]
    splittable = {i: aug.split_candidates(turns[i].text, lang, forbidden_spans(i)) for i in user_floor}
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

    # --- walk the turns in order and lay out utterances + placements.
    speak: list[PlannedUtterance] = []
    place: list[Placement] = []
    actions: list[PlannedAction] = []
    lead_in = rec.draw("merge", "lead_in_s", config.lead_in_s)
    tail = rec.draw("merge", "tail_s", config.tail_s)
    prev_role: str | None = None
    for i, t in enumerate(turns):
        if t.role == "assistant":
            text, a_lang = t.text, lang
            if family == "interpret" and i > 0 and turns[i - 1].translation:
                text, a_lang = turns[i - 1].translation or text, _other_lang(lang)
            uid = f"a{i}"
            speak.append(PlannedUtterance(id=uid, speaker="assistant", lang=a_lang, text=text, turn_index=i))
            if prev_role is None:
                gap = lead_in
            elif prev_role == "user":
                gap = rec.draw("merge", "response_gap_s", config.response_gap_s, uid)
            else:
                gap = rec.draw("merge", "inter_turn_gap_s", config.inter_turn_gap_s, uid)
            place.append(Placement(utterance_id=uid, gap_s=gap))
            prev_role = "assistant"
            if i in backchannel_at:
                _plan_backchannel(rec, annotation, config, i, speak, place)
            if i == interrupted:
                _plan_barge_in(rec, annotation, config, i, first_interruption, speak, place)
            continue

        # user turn
        if is_request(i):
            uid = f"u{i}"
            speak.append(
                PlannedUtterance(id=uid, speaker="user", lang=lang, text=t.text, kind="request", turn_index=i)
            )
            pos = rec.draw("request", "request_position", config.request_position, uid)
            place.append(Placement(utterance_id=uid, mode="request", host_id=f"a{i - 1}", position=pos))
            pieces = [(uid, t.text)]
        else:
            gap = (
                lead_in
                if prev_role is None
                else rec.draw("merge", "inter_turn_gap_s", config.inter_turn_gap_s, f"u{i}")
            )
            if i in pause_split:
                first, second = aug.split_text(t.text, lang, pause_split[i])
                p1, p2 = f"u{i}.1", f"u{i}.2"
                pieces = [(p1, first), (p2, second)]
                pause = rec.draw("pause", "pause_s", config.pause_s, f"u{i}")
                speak.append(PlannedUtterance(id=p1, speaker="user", lang=lang, text=first, turn_index=i))
                place.append(Placement(utterance_id=p1, gap_s=gap))
                fillers = list(annotation.fillers) or list(aug.FILLERS[lang])
                if rec.coin("pause", "filler", config.filler_prob, f"u{i}"):
                    fid = f"u{i}.filler"
                    ftext = rec.choice("pause", "filler_text", fillers, fid)
                    pre = round(pause * rec.draw("pause", "filler_split", config.filler_split, fid), 6)
                    speak.append(
                        PlannedUtterance(
                            id=fid, speaker="user", lang=lang, text=ftext, kind="filler", turn_index=i
                        )
                    )
                    place.append(Placement(utterance_id=fid, gap_s=pre))
                    post = round(pause - pre, 6)
                else:
                    post = pause
                speak.append(PlannedUtterance(id=p2, speaker="user", lang=lang, text=second, turn_index=i))
                place.append(
                    Placement(
                        utterance_id=p2,
                        gap_s=post,
                        label="response",
                        label_text=_label_text(rec, "response", lang, p2),
                    )
                )
            else:
                uid = f"u{i}"
                pieces = [(uid, t.text)]
                speak.append(PlannedUtterance(id=uid, speaker="user", lang=lang, text=t.text, turn_index=i))
                place.append(
                    Placement(
                        utterance_id=uid,
                        gap_s=gap,
                        label="response",
                        label_text=_label_text(rec, "response", lang, uid),
                    )
                )
            prev_role = "user"

        # tool calls of this user turn, each tied to the piece holding its anchor, in annotation order
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
            delay = rec.draw("tool", "tool_trigger_delay_s", config.tool_trigger_delay_s, aid)
            actions.append(
                PlannedAction(
                    id=aid,
                    name=a.name,
                    planning=a.planning,
                    parameters=dict(a.parameters),
                    anchor=a.anchor,
                    utterance_id=holder[0],
                    pattern=a.pattern,
                    delay_s=delay,
                    provenance=f"annotation:{annotation.provenance.get('actions', 'annotator')}:{a.pattern}",
                )
            )

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
        utterances_to_speak=tuple(speak),
        placements=tuple(place),
        actions=tuple(actions),
        lead_in_s=lead_in,
        tail_s=tail,
        augmentation=tuple(rec.params),
    )


def _plan_backchannel(
    rec: _Recorder, ann: Annotation, config: TimelineConfig, i: int, speak: list, place: list
) -> None:
    lang = ann.lang
    bid = f"bc{i}"
    if rec.coin("backchannel", "ambiguous_ack", config.ambiguous_ack_prob, bid):
        text = aug.ACK_PHRASES[lang][0]
    else:
        text = rec.choice(
            "backchannel", "backchannel_text", list(ann.backchannels) or list(aug.ACK_PHRASES[lang]), bid
        )
    speak.append(
        PlannedUtterance(id=bid, speaker="user", lang=lang, text=text, kind="backchannel", turn_index=i)
    )
    pos = rec.draw("backchannel", "backchannel_position", config.backchannel_position, bid)
    gap = rec.draw("backchannel", "backchannel_gap_s", config.backchannel_gap_s, bid)
    place.append(
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


def _plan_barge_in(
    rec: _Recorder,
    ann: Annotation,
    config: TimelineConfig,
    i: int,
    first: int,
    speak: list,
    place: list,
) -> None:
    """The user barges in on assistant turn ``a{i}``; the assistant yields and answers the new
    thought (``r{i}``). Each reply is barged in again with ``barge_in_prob`` while unused
    interruptions remain (SPEC 12: every further assistant turn, probability 0.5)."""
    lang = ann.lang
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


def build_session(
    plan: SessionPlan, clips: dict[str, Clip], config: TimelineConfig, run_seed: int
) -> BuiltSession:
    """Place every planned clip on the session clock, mix the two tracks and emit the actions.

    ``run_seed`` must be the seed the plan was made with (checked: a mismatch is a caller bug).
    """
    from .timing import check_timing

    if run_seed != plan.run_seed:
        raise ValueError(f"build_session run_seed {run_seed} != plan run_seed {plan.run_seed}")
    sr = config.sample_rate
    for u in plan.utterances_to_speak:
        clip = clips.get(u.id)
        if clip is None:
            raise RejectError("missing_clip", f"no synthesized clip for {u.id}")
        if clip.audio.ndim != 1:
            raise RejectError("clip_rate_mismatch", f"clip {u.id} is not mono")

    placed: dict[str, Utterance] = {}
    audio: dict[str, np.ndarray] = {}
    order: list[str] = []
    params: list[AugmentationParam] = list(plan.augmentation)
    actions: list[ActionObject] = []
    floor_end = 0

    local: dict[str, Utterance] = {}

    def local_utt(uid: str) -> Utterance:
        """Clip ``uid``'s utterance (clip clock) with word ends moved to the end of their sound."""
        if uid not in local:
            local[uid] = cover_sound(clips[uid].utterance, clips[uid].audio, sr)
        return local[uid]

    def put(uid: str, onset: int) -> Utterance:
        """Place clip ``uid`` so that its first word starts at ``onset`` (leading silence before it)."""
        pu = plan.utterance(uid)
        clip = clips[uid]
        a = np.asarray(clip.audio, dtype=np.float32)
        loc = local_utt(uid)
        start = max(0, onset - aug.speech_start(loc))
        utt = aug.shift_utterance(loc, start, int(a.shape[0])).model_copy(
            update={
                "id": uid,
                "speaker": pu.speaker,
                "speaker_id": plan.user_speaker_id if pu.speaker == "user" else plan.assistant_speaker_id,
                "lang": pu.lang,
                "kind": pu.kind,
                "turn_index": pu.turn_index,
            }
        )
        placed[uid], audio[uid] = utt, a
        order.append(uid)
        return utt

    for p in plan.placements:
        if p.mode == "floor":
            start = (config.samples(plan.lead_in_s) if not order else floor_end) + (
                0 if not order else config.samples(p.gap_s)
            )
            utt = put(p.utterance_id, start)
        else:
            host = placed.get(p.host_id or "")
            if host is None:
                raise ValueError(f"placement {p.utterance_id}: host {p.host_id} not placed before it")
            utt = _place_overlay(p, host, config, put, local_utt, audio, placed, params)
            if utt is None:  # a follow-up barge-in that does not fit: the chain ends here
                params.append(
                    AugmentationParam(
                        name="barge_in_chain_ended", value=True, distribution="derived", target=p.utterance_id
                    )
                )
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
        utt = placed[pa.utterance_id]
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

    end = max((u.audio_end_samples for u in placed.values()), default=0) + config.samples(plan.tail_s)
    chunk = config.chunk_samples
    duration = -(-end // chunk) * chunk
    tracks = {"user": np.zeros(duration, np.float32), "assistant": np.zeros(duration, np.float32)}
    for uid in order:
        u = placed[uid]
        a = audio[uid]
        tracks[u.speaker][u.audio_start_samples : u.audio_start_samples + a.shape[0]] += a
    for tr in tracks.values():
        # Overlapping user clips may sum over full scale; minimum/maximum in place beat np.clip here.
        np.minimum(tr, 1.0, out=tr)
        np.maximum(tr, -1.0, out=tr)

    utterances = tuple(sorted(placed.values(), key=lambda u: (u.audio_start_samples, u.id)))
    timeline = Timeline(
        session_id=plan.session_id,
        sample_rate=sr,
        duration_samples=duration,
        family=plan.family,
        lang=plan.lang,
        utterances=utterances,
        actions=tuple(sorted(actions, key=lambda a: (a.offset_samples, a.id))),
        augmentation=tuple(params),
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


def _place_overlay(
    p: Placement,
    host: Utterance,
    config: TimelineConfig,
    put: Callable[[str, int], Utterance],
    local_utt: Callable[[str], Utterance],
    audio: dict[str, np.ndarray],
    placed: dict[str, Utterance],
    params: list[AugmentationParam],
) -> Utterance | None:
    """Place a barge-in, backchannel or request over the assistant utterance ``host``.

    ``put`` places a clip at an onset; ``local_utt`` gives a clip's utterance on its own clock; a
    barge-in replaces the host's entry in ``placed``/``audio`` by its cut version and appends the
    derived values to ``params``. ``None``: a follow-up barge-in that does not fit its host.
    """
    h_start, h_end = aug.speech_start(host), aug.speech_end(host)
    if p.mode == "backchannel":
        n = len(host.words)
        if n == 0:
            start = h_start + int((h_end - h_start) * (p.position or 0.0))
        else:
            # After a word boundary, leaving the assistant a few more words to keep speaking -- and
            # speaking past the feedback's end (SPEC 8: it keeps speaking its plan over it).
            k = min(int((p.position or 0.0) * n), max(0, n - 1 - config.backchannel_min_words_after))
            fb = local_utt(p.utterance_id)
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
            params.append(
                AugmentationParam(
                    name="backchannel_after_word", value=k, distribution="derived", target=p.utterance_id
                )
            )
        return put(p.utterance_id, start)
    if p.mode == "request":
        start = h_start + int((h_end - h_start) * (p.position or 0.0))
        return put(p.utterance_id, start)
    # barge_in (SPEC 8): the user starts at a fraction of the host's speech; <interrupt> sits at the
    # end of the semantic anchor; the host speaks through the label's chunk and stops stop_delay
    # after that chunk starts (1-3 chunks later), and still had at least min_host_tail_s to say.
    chunk = config.chunk_samples
    stop_delay = config.samples(p.stop_delay_s or 0.0)
    loc = local_utt(p.utterance_id)
    anchor_rel = aug.anchor_end_samples(loc, p.anchor or "") - aug.speech_start(loc)
    onset = h_start + int((h_end - h_start) * (p.position or 0.0))
    # floor(label / chunk) * chunk <= label, so a label at latest_label keeps the stop in bounds
    latest_label = h_end - config.samples(config.min_host_tail_s) - stop_delay
    if onset + anchor_rel > latest_label:
        onset = latest_label - anchor_rel
        params.append(
            AugmentationParam(
                name="barge_in_onset_clamped", value=True, distribution="derived", target=p.utterance_id
            )
        )
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
                params.append(
                    AugmentationParam(
                        name="barge_in_onset_nudged_s",
                        value=round((ok[0] - onset) / config.sample_rate, 6),
                        distribution="derived",
                        target=p.utterance_id,
                    )
                )
            onset = ok[0]
            break
    label_t = onset + anchor_rel
    cut = label_t // chunk * chunk + stop_delay
    params.append(
        AugmentationParam(
            name="interrupt_stop_after_label_s",
            value=round((cut - label_t) / config.sample_rate, 6),
            distribution="derived",
            target=p.utterance_id,
        )
    )
    placed[host.id] = aug.cut_utterance(host, cut)
    audio[host.id] = aug.cut_audio(
        audio[host.id], cut - host.audio_start_samples, int(config.fade_ms * config.sample_rate / 1000)
    )
    return put(p.utterance_id, onset)
