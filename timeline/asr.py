"""Dual-side ASR on the action channel (SPEC section 7): transcript actions with real timing.

Input: a :class:`Timeline` (words with aligned times), a tokenizer, a :class:`ChunkGrid`, the side.
Output: ``asr`` :class:`ActionObject` s, one per chunk that receives transcript tokens, triggered at
the start of that chunk, provenance ``asr_rule``, id ``asr_<side>_<chunk:06d>``.

* user side: a word's tokens go to the chunk holding its aligned **end** (its last sample), plus
  ``lag_chunks``;
* assistant side: to the chunk where its audio **starts**, plus ``lag_chunks``; words of an
  interrupted utterance that start at or after the cut were never spoken and are dropped.

Tokens landing in one chunk are merged into one action (words joined by language: concatenated for
Chinese, space-separated otherwise). Triggers may fall after the session end: the FIFO drains into
padding chunks (docs/DECISIONS.md). No reject codes.
"""

from __future__ import annotations

from typing import Literal

from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.timeline import Timeline

from .clock import ChunkGrid
from .ta4 import join_words
from .tokenizer import Tokenizer

Side = Literal["user", "assistant"]


def asr_actions(
    timeline: Timeline, tokenizer: Tokenizer, grid: ChunkGrid, side: Side, lag_chunks: int = 2
) -> list[ActionObject]:
    if side not in ("user", "assistant"):
        raise ValueError(f"side must be 'user' or 'assistant', not {side!r}")
    # A word's pieces all land in its word's chunk, so the merged text is simply tokenized by the
    # FIFO; ``tokenizer`` is part of the interface for tokenizers that split differently later.
    _ = tokenizer
    by_chunk: dict[int, list[tuple[str, str]]] = {}
    utts = sorted(
        (u for u in timeline.utterances if u.speaker == side), key=lambda u: (u.audio_start_samples, u.id)
    )
    for utt in utts:
        for w in utt.words:
            if side == "user":
                c = grid.chunk_of(max(w.end_samples - 1, w.start_samples))
            else:
                if utt.cut_samples is not None and w.start_samples >= utt.cut_samples:
                    continue
                c = grid.chunk_of(w.start_samples)
            by_chunk.setdefault(c + lag_chunks, []).append((utt.lang, w.text))
    out = []
    for c in sorted(by_chunk):
        items = by_chunk[c]
        # Chinese words concatenate; a language switch inside a chunk gets a space.
        text = items[0][1]
        for (prev_lang, _), (lang, word) in zip(items, items[1:], strict=False):
            sep = "" if lang == "zh" and prev_lang == "zh" else " "
            text += sep + word
        out.append(
            ActionObject(
                id=f"asr_{side}_{c:06d}",
                name="asr",
                offset_samples=grid.chunk_start(c),
                text=text,
                provenance="asr_rule",
            )
        )
    return out


__all__ = ["asr_actions", "join_words"]
