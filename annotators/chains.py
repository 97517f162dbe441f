"""Chronological thinking chains (SPEC section 10): user segments, the chain checks and the offline
generator.

A user turn is cut into segments at clause punctuation (:func:`segments`, shared with the
timeline); each :class:`ThinkingNode` is tied to the (turn, segment) that triggered it, and
``@ctx:ID`` binds an entity across turns: the first ``ENTITY`` node with an id introduces it, any
later node with that id refers back to it, and no node may use an id introduced after it.
A node is causal: built only from what was said up to the end of its segment (earlier turns of
both speakers and the turn's segments so far), never from a later segment, turn or reply.
:func:`offline_chain` makes such a chain without an LLM, for every user turn.

Reject codes: ``chain_bad_segment`` (a node tied to a turn that is not a user turn, or to a segment
it does not have), ``chain_not_chronological`` (nodes out of (turn, segment) order),
``chain_unbound_ctx`` (``@ctx`` reference to no earlier entity), ``chain_not_causal`` (a node uses
words first said after its segment).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from duplexloom.schemas.annotation import AnnotatedTurn, ThinkingNode
from duplexloom.schemas.reject import RejectError
from duplexloom.timeline.cognition import render_node, segments

from .cognition import _EN_STOP, _EN_WORD, _ZH_DROP, _keys, intent_of

__all__ = ["check", "offline_chain", "render", "segments"]


def render(node: ThinkingNode) -> str:
    """``{TYPE} attributes`` with the ``@ctx:ID`` binding appended, as it goes on the action channel."""
    return render_node(node)


def _said(turns: Sequence[AnnotatedTurn], turn_index: int, segment_index: int) -> tuple[str, str]:
    """(what was said through segment ``segment_index`` of turn ``turn_index``, what comes after)."""
    segs = segments(turns[turn_index].text)
    before = [t.text for t in turns[:turn_index]] + segs[: segment_index + 1]
    after = segs[segment_index + 1 :] + [t.text for t in turns[turn_index + 1 :]]
    return " ".join(before), " ".join(after)


def _causal(
    text: str, turns: Sequence[AnnotatedTurn], turn_index: int, segment_index: int, lang: str
) -> bool:
    said, later = _said(turns, turn_index, segment_index)
    heard = _keys(said, lang)
    return not (_keys(text, lang) & (_keys(later, lang) - heard))


def check(nodes: Sequence[ThinkingNode], turns: Sequence[AnnotatedTurn], lang: str | None = None) -> None:
    entities: set[str] = set()
    last = (-1, -1)
    for k, n in enumerate(nodes):
        if not (0 <= n.turn_index < len(turns)) or turns[n.turn_index].role != "user":
            raise RejectError("chain_bad_segment", f"node {k}: turn {n.turn_index} is not a user turn")
        n_seg = len(segments(turns[n.turn_index].text))
        if not 0 <= n.segment_index < n_seg:
            raise RejectError(
                "chain_bad_segment", f"node {k}: segment {n.segment_index} of a turn with {n_seg} segment(s)"
            )
        pos = (n.turn_index, n.segment_index)
        if pos < last:
            raise RejectError("chain_not_chronological", f"node {k} at {pos} comes after {last}")
        last = pos
        if n.ctx_id is not None:
            if n.type == "ENTITY":
                entities.add(n.ctx_id)
            elif n.ctx_id not in entities:
                raise RejectError(
                    "chain_unbound_ctx", f"node {k} refers to @ctx:{n.ctx_id} before any ENTITY"
                )
        if lang is not None and not _causal(n.text, turns, n.turn_index, n.segment_index, lang):
            said, later = _said(turns, n.turn_index, n.segment_index)
            early = sorted(_keys(n.text, lang) & (_keys(later, lang) - _keys(said, lang)))
            raise RejectError(
                "chain_not_causal", f"node {k} at {pos} uses {early}, first said after its segment"
            )


# ---- the offline generator ---------------------------------------------------------------------

_EN_DET = frozenset("the a an my your our his her their this that these those some".split())
_ZH_FUNCTION = re.compile(
    r"^(请问|请|帮我|麻烦|我想|我要|你能|能不能|可以|这个|那个|要|查一下|查查|看看|告诉我|问一下|查)+"
    r"|(有|是什么|怎么样|为什么|多少|多久|多远|什么|怎么|吗|呢|吧|啊|呀|了)+$"
)
_ZH_JOINT = re.compile(r"[的和跟与在]")
_LABELS = {
    "en": {
        "question": "question",
        "request": "request",
        "statement": "statement",
        "act_question": "answer",
        "act_request": "do it",
        "act_statement": "reply",
    },
    "zh": {
        "question": "提问",
        "request": "请求",
        "statement": "陈述",
        "act_question": "作答",
        "act_request": "照办",
        "act_statement": "回应",
    },
}
_BACK = {"en": "same as before: {x}", "zh": "指代前文{x}"}


def _entities(segment: str, lang: str) -> list[str]:
    """Salient phrases of one segment, by form only: nouns after a determiner (en) or the clause's
    core with request/question words stripped (zh); at most two."""
    if lang == "zh":
        core = _ZH_FUNCTION.sub("", _ZH_DROP.sub("", segment))
        return [p[:4] for p in _ZH_JOINT.split(core) if len(p) >= 2][:2]
    words = _EN_WORD.findall(segment.casefold())
    found = []
    for k, w in enumerate(words[:-1]):
        if w in _EN_DET:  # the noun phrase after a determiner: up to three content words
            run = []
            for x in words[k + 1 : k + 4]:
                if x in _EN_STOP or x in _EN_DET:
                    break
                run.append(x)
            if run and len(run[-1]) > 2:
                found.append(" ".join(run))
    return list(dict.fromkeys(found))[:2]


def offline_chain(turns: Sequence[AnnotatedTurn], lang: str) -> tuple[ThinkingNode, ...]:
    """A causal chain for every user turn, without an LLM: per segment its entities (``@ctx`` ids,
    reused when an entity comes back, with a ``LOGIC`` node saying so), an ``INTENT`` once the
    words show a question or request, and an ``ACTION`` at the turn's last segment. A node whose
    own wording the dialogue only says later is left out (it would not be causal)."""
    labels = _LABELS[lang]
    ids: dict[str, str] = {}
    nodes: list[ThinkingNode] = []

    def add(node: ThinkingNode) -> None:
        if _causal(node.text, turns, node.turn_index, node.segment_index, lang):
            nodes.append(node)

    for i, turn in enumerate(turns):
        if turn.role != "user":
            continue
        segs = segments(turn.text)
        intent: str | None = None
        for j, seg in enumerate(segs):
            for ent in _entities(seg, lang):
                known = next((k for k in ids if k == ent or f" {k} " in f" {ent} "), None)
                if known is not None:  # said before (alone or inside a longer phrase): bind back
                    back = _BACK[lang].replace("{x}", known)
                    add(
                        ThinkingNode(
                            type="LOGIC", text=back, turn_index=i, segment_index=j, ctx_id=ids[known]
                        )
                    )
                    continue
                ids[ent] = f"e{len(ids) + 1}"
                add(ThinkingNode(type="ENTITY", text=ent, turn_index=i, segment_index=j, ctx_id=ids[ent]))
            if intent is None:
                intent = intent_of(" ".join(segs[: j + 1]), lang)
                if intent is not None:
                    add(ThinkingNode(type="INTENT", text=labels[intent], turn_index=i, segment_index=j))
            if j == len(segs) - 1:
                if intent is None:
                    intent = "statement"
                    add(ThinkingNode(type="INTENT", text=labels[intent], turn_index=i, segment_index=j))
                add(ThinkingNode(type="ACTION", text=labels[f"act_{intent}"], turn_index=i, segment_index=j))
    # An ENTITY left out leaves its id unbound: drop the nodes referring to it.
    bound: set[str] = set()
    kept = []
    for n in nodes:
        if n.type == "ENTITY" and n.ctx_id:
            bound.add(n.ctx_id)
        elif n.ctx_id and n.ctx_id not in bound:
            continue
        kept.append(n)
    return tuple(kept)
