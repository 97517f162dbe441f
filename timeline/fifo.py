"""The action FIFO (SPEC section 5): rendered actions cut into per-chunk pieces under a token budget.

Input: ``(ActionObject, rendered text)`` pairs, a tokenizer, the grid, the session's chunk count and
the budget B. Output: ``list[list[ActionPiece]]``, one list per chunk, at least ``n_chunks`` long.

All actions form one queue ordered by (trigger chunk, offset, id). Chunk ``c`` takes the head if its
trigger chunk <= c and writes as many of its tokens as fit in the remaining budget; when the head
closes and budget remains, the next ready action starts in the same chunk. Nothing preempts or
interleaves. When the queue outlasts the session, more chunks are appended until it drains (the
caller pads both audio tracks with silence; docs/DECISIONS.md).

The budget counts the chunk's action text tokenized on its own (markers count, the closing
``<|action_end|>`` does not). For additive tokenizers (builtin) that is the number of pieces; for
``tokenizer.json`` tokenizers each chunk's text is re-counted and pieces are moved to the next chunk
until it fits, so the invariant holds whatever the merges do. Between two different actions in one
chunk a space is inserted where two Latin word characters would touch (:func:`separator`); it
belongs to the chunk's text, not to either action.

Reject code: ``piece_over_budget`` (a single piece counts more than B tokens on its own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.chunk import ActionPiece
from duplexloom.schemas.reject import RejectError

from .clock import ChunkGrid
from .tokenizer import CJK_CLASS, Tokenizer

_CJK_RE = re.compile(f"[{CJK_CLASS}]")


def queue_order(
    rendered: Sequence[tuple[ActionObject, str]], grid: ChunkGrid
) -> list[tuple[ActionObject, str]]:
    """The queue: sorted by (trigger chunk, offset, id)."""
    return sorted(
        rendered, key=lambda ar: (grid.chunk_of(ar[0].offset_samples), ar[0].offset_samples, ar[0].id)
    )


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and _CJK_RE.match(ch) is None


def separator(prev_text: str, next_text: str) -> str:
    """What goes between two different actions' pieces inside one chunk: a space when a Latin (or
    other spaced-script) word character would touch another, so that English actions do not run
    together ("opens" + "user is ..." -> "opens user is ..."); nothing otherwise (Chinese, markers,
    JSON). The space is not part of either action's rendered text."""
    if prev_text and next_text and _is_word_char(prev_text[-1]) and _is_word_char(next_text[0]):
        return " "
    return ""


def join_pieces(pieces: Sequence[ActionPiece]) -> str:
    """A chunk's action text: its pieces in order, with :func:`separator` between different actions."""
    text = ""
    prev_id = None
    for p in pieces:
        if prev_id is not None and p.action_id != prev_id:
            text += separator(text, p.text)
        text += p.text
        prev_id = p.action_id
    return text


def schedule(
    rendered: Sequence[tuple[ActionObject, str]],
    tokenizer: Tokenizer,
    grid: ChunkGrid,
    n_chunks: int,
    budget: int = 10,
) -> list[list[ActionPiece]]:
    if budget < 1:
        raise ValueError(f"budget must be >= 1, not {budget}")
    # Builtin pieces are single tokens and a separator space merges into the next word piece, so
    # the chunk count is the number of pieces (an upper bound when texts end in whitespace).
    additive = bool(getattr(tokenizer, "additive", False))
    queue = queue_order(rendered, grid)
    for action, text in queue:
        if not text:
            raise ValueError(f"action {action.id!r} rendered to empty text")  # render_action never does
    out: list[list[ActionPiece]] = [[] for _ in range(n_chunks)]
    qi = 0  # queue head
    head_pieces: list[str] = []
    pos = 0  # next piece of the head
    c = 0
    while qi < len(queue):
        while c >= len(out):
            out.append([])
        trigger = grid.chunk_of(queue[qi][0].offset_samples)
        if trigger > c:
            c = trigger  # nothing ready: jump straight to the head's trigger chunk
            continue
        chunk_pieces = out[c]
        used = 0
        chunk_text = ""
        while qi < len(queue):
            action, text = queue[qi]
            if grid.chunk_of(action.offset_samples) > c:
                break
            if pos == 0:
                head_pieces = tokenizer.pieces(text)
            sep = separator(chunk_text, head_pieces[pos]) if chunk_pieces else ""
            if additive:
                take = min(budget - used, len(head_pieces) - pos)
            else:
                take = _fit_non_additive(tokenizer, chunk_text + sep, head_pieces, pos, budget)
            if take <= 0:
                if not chunk_pieces:
                    raise RejectError(
                        "piece_over_budget",
                        f"action {action.id!r}: piece {head_pieces[pos]!r} alone exceeds the budget of {budget}",
                    )
                break
            piece_text = "".join(head_pieces[pos : pos + take])
            pos += take
            closes = pos >= len(head_pieces)
            tokens = take if additive else tokenizer.count(piece_text)
            chunk_pieces.append(
                ActionPiece(action_id=action.id, text=piece_text, tokens=tokens, closes=closes)
            )
            chunk_text += sep + piece_text
            used += take
            if closes:
                qi += 1
                pos = 0
            if additive and used >= budget:
                break
        c += 1
    return out


def _fit_non_additive(tokenizer: Tokenizer, chunk_text: str, pieces: list[str], pos: int, budget: int) -> int:
    """How many of ``pieces[pos:]`` fit after ``chunk_text`` with the whole chunk re-counted <= budget."""
    lo, hi = 0, len(pieces) - pos
    # Counts are monotone in the number of pieces taken; binary search keeps re-counting O(log n).
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tokenizer.count(chunk_text + "".join(pieces[pos : pos + mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
