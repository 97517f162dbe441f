"""Per-chunk serialization record (SPEC sections 5, 13, 15)."""

from __future__ import annotations

from .base import Record


class ActionPiece(Record):
    """The part of one action's rendered text written in one chunk."""

    action_id: str
    text: str
    tokens: int
    closes: bool  # True when this piece ends the action's rendered text


class ChunkRecord(Record):
    chunk: int
    user_words: tuple[str, ...] = ()
    anchor: str
    action_text: str = ""
    action_tokens: int = 0
    pieces: tuple[ActionPiece, ...] = ()
