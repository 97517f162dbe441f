"""Cognition on the session clock (SPEC sections 10, 14): an annotation's per-second cognition and
thinking-chain nodes -> ``think`` action objects, timed at the end of the second or segment they
describe.

Input: a built :class:`Timeline` (aligned user words on the session clock) and the session's
:class:`Annotation` (``cognition`` streams with ``heard_units``, ``chains`` nodes). Output: a tuple of
:class:`ActionObject` (``name="think"``), ready to join the timeline's actions; they pass through
the action FIFO and its budget like any action (SPEC section 5).

Timing. A user turn's text is cut into word units (:func:`duplexloom.timeline.augment.units`: an
English word, a CJK character). An entry of second t describes the first ``heard_units[t]`` units
of its turn (what the annotator cut as "heard by the end of second t"); a chain node describes the
units through the end of its clause (:func:`segments`). Its offset is the end of the session
second (whole seconds from the session start) in which the last of those units' aligned audio
ends (a chain node: that end itself, the end of its segment): it never precedes the words it uses,
and it lands in Listen-Write-Speak unit t when those words end in second t (a unit holds the notes
timed in ``(start, end]``). Notes of one turn never go back in time. When the aligned words of a
turn hold a different number of units than its text (normalization), the count is scaled. A stream
cut on the session clock (``start_second`` set, :func:`heard_by_second`) puts entry t at the end of
session second ``start_second + t``.

Also here, low in the stack so that the annotators, the layouts and this module agree: the clause
cut of a user turn (:func:`segments`) and the node rendering (:func:`render_node`, :data:`NODE_SEP`).

No reject codes: a stream or node whose user turn is not on the timeline (dropped after a barge-in)
is skipped and :func:`think_actions` reports it in its ``omitted`` counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from duplexloom.schemas import ActionObject, Timeline, Utterance
from duplexloom.schemas.annotation import Annotation, ThinkingNode

from .augment import norm_units, units

THINK = "think"
# Provenance prefixes: the LWS layout puts cognition notes into its listening units, not chain nodes.
COGNITION_PROV = "cognition"
CHAIN_PROV = "chain"
# Chronological thinking writes one node per line.
NODE_SEP = "\n"

_CLAUSE = re.compile(r"(?<=[,.;!?,。;!?、，；！？])\s*")


def segments(text: str) -> list[str]:
    """Clauses of a user turn, in order (punctuation kept with the clause it closes)."""
    return [s.strip() for s in _CLAUSE.split(text) if s.strip()]


def units_through_segment(text: str, lang: str, segment_index: int) -> int:
    """Word units heard once clause ``segment_index`` of ``text`` has been said."""
    return sum(len(units(s, lang)) for s in segments(text)[: segment_index + 1])


def render_node(node: ThinkingNode) -> str:
    """``{TYPE} attributes`` with the ``@ctx:ID`` binding appended."""
    ctx = f" @ctx:{node.ctx_id}" if node.ctx_id else ""
    return f"{{{node.type}}} {node.text}{ctx}"


def turn_unit_ends(timeline: Timeline, turn_index: int) -> list[int]:
    """End sample of every word unit the user says in turn ``turn_index``, in spoken order.

    The turn's floor utterances only (both pieces of a turn split by a pause; no filler, no
    backchannel). Chinese uses character times when the aligner gave them.
    """
    utts: list[Utterance] = sorted(
        (
            u
            for u in timeline.utterances
            if u.speaker == "user" and u.turn_index == turn_index and u.kind in ("turn", "request")
        ),
        key=lambda u: (u.audio_start_samples, u.id),
    )
    out: list[int] = []
    for u in utts:
        spans = u.chars if (u.lang == "zh" and u.chars) else u.words
        for w in spans:
            out.extend(w.end_samples for _ in norm_units(w.text, u.lang))
    return out


def heard_by_second(timeline: Timeline, turn_index: int, n_text: int) -> tuple[int, list[int]]:
    """(first second, text units heard by the end of each session second): from the second in
    which the turn's first word unit ends to the one in which its last ends. Counts are in the
    turn text's units (scaled down when the aligned words hold more), so that :func:`heard_end` of
    a count never lies after its second."""
    ends = turn_unit_ends(timeline, turn_index)
    if not ends or n_text <= 0:
        return 0, []
    sr = timeline.sample_rate
    first, last = (ends[0] - 1) // sr, (ends[-1] - 1) // sr
    counts = []
    for s in range(first, last + 1):
        k = sum(1 for e in ends if e <= (s + 1) * sr)
        counts.append(k if len(ends) == n_text else k * n_text // len(ends))
    return first, counts


def heard_end(ends: Sequence[int], n_heard: int, n_text: int) -> int:
    """End sample of the ``n_heard``-th of ``n_text`` text units, on the aligned ``ends``."""
    if not ends or n_heard <= 0:
        return ends[0] if ends else 0
    k = n_heard if len(ends) == n_text else -(-n_heard * len(ends) // max(n_text, 1))
    return ends[min(k, len(ends)) - 1]


def second_end(t_samples: int, sample_rate: int, duration_samples: int) -> int:
    """End of the session second holding the sample just before ``t_samples`` (capped at the end)."""
    return min(-(-t_samples // sample_rate) * sample_rate, duration_samples)


@dataclass
class ThinkResult:
    actions: tuple[ActionObject, ...]
    omitted: dict[str, int] = field(default_factory=dict)  # reason -> count


def think_actions(
    timeline: Timeline, annotation: Annotation, sources: Sequence[str] = ("cognition", "chains")
) -> ThinkResult:
    """The ``think`` actions of ``annotation``'s cognition streams and chain nodes (module docstring)."""
    sr, dur = timeline.sample_rate, timeline.duration_samples
    lang = annotation.lang
    out: list[ActionObject] = []
    omitted: dict[str, int] = {}
    prov = annotation.provenance

    def skip(reason: str) -> None:
        omitted[reason] = omitted.get(reason, 0) + 1

    if "cognition" in sources:
        for stream in annotation.cognition:
            ends = turn_unit_ends(timeline, stream.turn_index)
            if not ends:
                skip("cognition_turn_not_on_timeline")
                continue
            text = annotation.turns[stream.turn_index].text
            n_text = len(units(text, lang))
            if len(stream.heard_units) != len(stream.entries):
                skip("cognition_without_heard_units")
                continue
            last = 0
            for t, (e, n) in enumerate(zip(stream.entries, stream.heard_units, strict=True)):
                if not e.text.strip():
                    continue
                off = max(last, second_end(heard_end(ends, n, n_text), sr, dur))
                if stream.start_second is not None:  # cut on the session clock: exactly its second
                    off = max(off, min((stream.start_second + t + 1) * sr, dur))
                last = off
                out.append(
                    ActionObject(
                        id=f"think.c{stream.turn_index:02d}.{e.second:03d}",
                        name=THINK,
                        offset_samples=off,
                        text=e.text,
                        provenance=f"{COGNITION_PROV}:{prov.get('cognition', 'annotator')}",
                    )
                )
    if "chains" in sources:
        last_by_turn: dict[int, int] = {}
        for k, node in enumerate(annotation.chains):
            ends = turn_unit_ends(timeline, node.turn_index)
            if not ends:
                skip("chain_turn_not_on_timeline")
                continue
            text = annotation.turns[node.turn_index].text
            n = units_through_segment(text, lang, node.segment_index)
            off = min(heard_end(ends, n, len(units(text, lang))), dur)  # the segment's end, exactly
            off = max(off, last_by_turn.get(node.turn_index, 0))
            last_by_turn[node.turn_index] = off
            out.append(
                ActionObject(
                    id=f"think.n{node.turn_index:02d}.{k:03d}",
                    name=THINK,
                    offset_samples=off,
                    text=render_node(node),
                    provenance=f"{CHAIN_PROV}:{prov.get('chains', 'annotator')}",
                )
            )
    return ThinkResult(tuple(out), omitted)


def with_think_actions(
    timeline: Timeline, annotation: Annotation, families: Sequence[str], sources: Sequence[str]
) -> Timeline:
    """``timeline`` plus the think actions of ``annotation`` when its family is one of ``families``."""
    if timeline.family not in families:
        return timeline
    res = think_actions(timeline, annotation, sources)
    if not res.actions:
        return timeline
    return timeline.model_copy(update={"actions": (*timeline.actions, *res.actions)})
