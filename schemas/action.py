"""Action objects on the action channel (SPEC section 4) and the tool catalog entry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Record

CONTROL_NAMES = ("response", "interrupt", "backchannel")
TEXT_NAMES = ("asr", "think")
BUILTIN_ACTION_NAMES = CONTROL_NAMES + TEXT_NAMES


class ToolSpec(Record):
    """One catalog function: ``parameters`` is a JSON Schema for its ``arguments`` object."""

    name: str
    category: Literal["car", "system", "navigation", "media", "search", "query", "communication"]
    description_zh: str
    description_en: str
    parameters: dict[str, Any]


class ActionObject(Record):
    """An action: tool call, control label, transcript (``asr``) or thinking note (``think``).

    ``offset_samples`` is the semantic trigger time on the session clock; it is snapped to chunk
    ``floor(offset / chunk)``. ``text`` carries the text of ``asr``/``think`` actions and, when set,
    the paraphrase phrase of a control label (otherwise the renderer picks one, seeded).
    """

    id: str
    name: str
    offset_samples: int = Field(ge=0)
    planning: str | None = None
    parameters: dict[str, Any] | None = None
    text: str | None = None
    anchor: str | None = None  # the words of the user utterance at which the intent is clear
    anchor_utterance_id: str | None = None
    provenance: str = "unknown"  # which annotator or rule made it

    @property
    def is_tool_call(self) -> bool:
        return self.name not in BUILTIN_ACTION_NAMES
