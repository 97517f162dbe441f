"""The TA4 + action-FIFO serializer (SPEC sections 5-7, 13, 15): timeline -> per-chunk records.

Input: a :class:`Timeline` and a tokenizer. Output: ``list[ChunkRecord]`` (``schemas/chunk.py``) with
the user words heard in each chunk (those whose aligned end falls in it), the TA4 anchor, the action
text, its token count and its pieces; plus :func:`render_trace` (SPEC section 15 notation) and
:func:`chunks_to_json`.

Actions: the timeline's own actions (``asr_rule`` ones are dropped and re-derived) plus the ASR
actions of ``asr_sides``. When the FIFO outlasts the session, padding chunks (no user words,
``<vad_silence>``) are appended until it drains.

Reject codes: those of ``validate.check_timeline``, ``ta4`` (``text_outruns_audio``,
``assistant_overlap``) and ``fifo`` (``piece_over_budget``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import (
    ACTION_END,
    ASSISTANT_AUDIO_BEGIN,
    ASSISTANT_AUDIO_END,
    USER_AUDIO_BEGIN,
    USER_AUDIO_END,
    VAD_SILENCE,
)

from .actions import render_action
from .asr import asr_actions
from .clock import ChunkGrid
from .fifo import join_pieces, schedule
from .ta4 import anchor_schedule
from .tokenizer import Tokenizer
from .validate import check_timeline


def user_words_by_chunk(timeline: Timeline, grid: ChunkGrid) -> dict[int, list[str]]:
    """User words per chunk, placed at the chunk holding each word's last sample (fully heard)."""
    heard: dict[int, list[str]] = {}
    utts = sorted(
        (u for u in timeline.utterances if u.speaker == "user"), key=lambda u: (u.audio_start_samples, u.id)
    )
    for u in utts:
        for w in u.words:
            heard.setdefault(grid.chunk_of(max(w.end_samples - 1, w.start_samples)), []).append(w.text)
    return heard


def serialize(
    timeline: Timeline,
    *,
    tokenizer: Tokenizer,
    budget: int = 10,
    asr_sides: Iterable[str] = ("user",),
    lag_chunks: int = 2,
    check: bool = True,
) -> list[ChunkRecord]:
    """Serialize ``timeline`` to chunk records (see the module docstring)."""
    if check:
        check_timeline(timeline)
    grid = ChunkGrid(timeline.sample_rate)
    n = grid.n_chunks(timeline.duration_samples)
    anchors = anchor_schedule(timeline, tokenizer, grid)
    actions = [a for a in timeline.actions if a.provenance != "asr_rule"]
    for side in asr_sides:
        actions.extend(asr_actions(timeline, tokenizer, grid, side, lag_chunks=lag_chunks))  # type: ignore[arg-type]
    rendered = [
        (a, render_action(a, lang=timeline.lang, phrase_rng_seed=timeline.session_id)) for a in actions
    ]
    per_chunk = schedule(rendered, tokenizer, grid, n, budget=budget)
    heard = user_words_by_chunk(timeline, grid)
    out = []
    for c, pieces in enumerate(per_chunk):
        text = join_pieces(pieces)
        out.append(
            ChunkRecord(
                chunk=c,
                user_words=tuple(heard.get(c, ())),
                anchor=anchors[c] if c < n else VAD_SILENCE,
                action_text=text,
                action_tokens=tokenizer.count(text) if text else 0,
                pieces=tuple(pieces),
            )
        )
    return out


def _one_line(text: str) -> str:
    # A trace is one line per chunk: make line breaks inside texts visible instead of breaking it.
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def trace_line(ch: ChunkRecord) -> str:
    user = "U U(" + _one_line(" ".join(ch.user_words)) + ")" if ch.user_words else "U U"
    action = _one_line(ch.action_text) + " " if ch.action_text else ""
    return (
        f"{USER_AUDIO_BEGIN} {user} {USER_AUDIO_END} {ASSISTANT_AUDIO_BEGIN} T({_one_line(ch.anchor)}) A A A A "
        f"{ASSISTANT_AUDIO_END} {action}{ACTION_END}"
    )


def render_trace(chunks: Sequence[ChunkRecord]) -> str:
    """SPEC section 15: one line per chunk, newline-terminated."""
    return "".join(trace_line(ch) + "\n" for ch in chunks)


def chunks_to_json(chunks: Sequence[ChunkRecord]) -> list[dict]:
    """One JSON object per chunk: chunk, user_words, anchor, action_text, action_tokens, pieces."""
    return [
        {
            "chunk": ch.chunk,
            "user_words": list(ch.user_words),
            "anchor": ch.anchor,
            "action_text": ch.action_text,
            "action_tokens": ch.action_tokens,
            "pieces": [p.model_dump() for p in ch.pieces],
        }
        for ch in chunks
    ]
