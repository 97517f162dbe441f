"""Checks on annotated content shared by every annotator: tool calls and their anchors.

Input: a user turn's text and the :class:`AnnotatedAction` records asked for in it.
Reject codes: ``unknown_tool``, ``invalid_arguments`` (from the catalog validator),
``anchor_not_found`` (anchor words do not occur in the utterance), ``anchor_order`` (a multi-action
turn whose anchors are not in the order of its actions).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from duplexloom.prompts import validate_arguments
from duplexloom.schemas.annotation import AnnotatedAction
from duplexloom.schemas.reject import RejectError

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    """Case-fold, NFKC (full-width punctuation to ASCII) and collapse whitespace."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _strip_punct(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P")).strip()


def anchor_position(anchor: str, utterance: str) -> int:
    """Index in the normalized utterance where ``anchor`` ends, or -1 when it does not occur.

    Punctuation at the anchor's edges is ignored: LLMs copy words, not always the commas around them.
    """
    a = _strip_punct(_norm(anchor))
    u = _norm(utterance)
    if not a:
        return -1
    i = u.find(a)
    if i < 0:
        # Chinese text may be spaced differently by the LLM than in the utterance.
        a2, u2 = a.replace(" ", ""), u.replace(" ", "")
        j = u2.find(a2)
        return -1 if j < 0 else j + len(a2)
    return i + len(a)


def check_actions(utterance: str, actions: Sequence[AnnotatedAction]) -> None:
    """Raise ``RejectError`` unless every action is a valid catalog call anchored in ``utterance``."""
    last_end = -1
    for k, act in enumerate(actions):
        validate_arguments(act.name, act.parameters)
        end = anchor_position(act.anchor, utterance)
        if end < 0:
            raise RejectError(
                "anchor_not_found", f"action {k} ({act.name}): anchor {act.anchor!r} is not in {utterance!r}"
            )
        if len(actions) > 1 and end < last_end:
            raise RejectError(
                "anchor_order",
                f"action {k} ({act.name}): anchor {act.anchor!r} comes before the previous one",
            )
        last_end = end
