"""Rendering one action object to its action-channel text (SPEC section 4).

Input: an :class:`ActionObject`, the session language and a seed string (the session id).
Output: the rendered text that the FIFO cuts into per-chunk pieces.

* tool call: ``planning<|toolcall_begin|>{"function":NAME,"arguments":{...}}<|toolcall_end|>`` —
  compact JSON (no spaces), ``function`` before ``arguments``, argument keys sorted, non-ASCII kept;
* control label (``response`` / ``interrupt`` / ``backchannel``): a paraphrase followed by the label
  token; ``action.text`` when given, otherwise a phrase of ``prompts/labels.json`` chosen with a
  generator seeded by (seed string, action id, "label_phrase");
* ``asr`` / ``think``: the text alone.

Reject codes: ``unknown_tool``, ``invalid_arguments`` (from the catalog), ``marker_in_text``
(a reserved marker inside planning, text or arguments), ``invalid_action`` (missing text, planning
or parameters on an action that cannot carry them).
"""

from __future__ import annotations

import json

import numpy as np

from duplexloom.prompts import label_phrases, validate_arguments
from duplexloom.schemas.action import CONTROL_NAMES, TEXT_NAMES, ActionObject
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.rng import parts_seed
from duplexloom.schemas.tokens import LABEL_TOKEN_BY_NAME, TOOLCALL_BEGIN, TOOLCALL_END, find_markers


def _no_markers(text: str, what: str) -> None:
    found = find_markers(text)
    if found:
        raise RejectError(
            "marker_in_text", f"{what}: contains reserved marker string(s) {sorted(set(found))}"
        )


def tool_call_json(name: str, arguments: dict | None) -> str:
    """The compact JSON of a tool call: ``function`` first, then ``arguments`` with sorted keys."""
    args = json.dumps(arguments or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return '{"function":' + json.dumps(name, ensure_ascii=False) + ',"arguments":' + args + "}"


def pick_label_phrase(label: str, lang: str, phrase_rng_seed: str, action_id: str) -> str:
    phrases = label_phrases(label, lang)
    rng = np.random.default_rng(parts_seed(phrase_rng_seed, action_id, "label_phrase"))
    return phrases[int(rng.integers(len(phrases)))]


def render_action(action: ActionObject, *, lang: str, phrase_rng_seed: str) -> str:
    """The rendered action-channel text of ``action`` (see the module docstring)."""
    where = f"action {action.id!r} ({action.name})"
    if action.planning is not None:
        _no_markers(action.planning, f"{where}.planning")
    if action.text is not None:
        _no_markers(action.text, f"{where}.text")
    if action.name in CONTROL_NAMES or action.name in TEXT_NAMES:
        if action.parameters:
            raise RejectError("invalid_action", f"{where}.parameters: only tool calls take parameters")
        if action.planning:
            raise RejectError("invalid_action", f"{where}.planning: only tool calls take planning text")
    if action.name in CONTROL_NAMES:
        phrase = action.text if action.text is not None else None
        if phrase is None:
            phrase = pick_label_phrase(action.name, lang, phrase_rng_seed, action.id)
        return phrase + LABEL_TOKEN_BY_NAME[action.name]
    if action.name in TEXT_NAMES:
        if not action.text:
            raise RejectError("invalid_action", f"{where}.text: an {action.name} action needs non-empty text")
        return action.text
    validate_arguments(action.name, action.parameters)
    body = tool_call_json(action.name, action.parameters)
    _no_markers(body, f"{where}.parameters")
    if action.text:
        raise RejectError("invalid_action", f"{where}.text: a tool call carries planning, not text")
    return (action.planning or "") + TOOLCALL_BEGIN + body + TOOLCALL_END
