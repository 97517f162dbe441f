"""Chronological thinking chains (SPEC section 10): user segments and the chain checks.

A user turn is cut into segments at clause punctuation; each :class:`ThinkingNode` is tied to the
(turn, segment) that triggered it, and ``@ctx:ID`` binds an entity across turns: a node carrying a
``ctx_id`` must refer to an ``ENTITY`` node introduced at or before it.

Reject codes: ``chain_bad_segment`` (a node tied to a turn that is not a user turn, or to a segment
it does not have), ``chain_not_chronological`` (nodes out of (turn, segment) order),
``chain_unbound_ctx`` (``@ctx`` reference to no earlier entity).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from duplexloom.schemas.annotation import AnnotatedTurn, ThinkingNode
from duplexloom.schemas.reject import RejectError

_CLAUSE = re.compile(r"(?<=[,.;!?,。;!?、])\s*")


def segments(text: str) -> list[str]:
    """Clauses of a user turn, in order (punctuation kept with the clause it closes)."""
    return [s.strip() for s in _CLAUSE.split(text) if s.strip()]


def render(node: ThinkingNode) -> str:
    """``{TYPE} attributes`` with the ``@ctx:ID`` binding appended, as it goes on the action channel."""
    ctx = f" @ctx:{node.ctx_id}" if node.ctx_id else ""
    return f"{{{node.type}}} {node.text}{ctx}"


def check(nodes: Sequence[ThinkingNode], turns: Sequence[AnnotatedTurn]) -> None:
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
