"""Chronological-thinking text channel (SPEC section 16): one token per 80 ms frame.

Input: a :class:`Timeline`, a tokenizer, the thinking-chain nodes (``"{INTENT} ..."`` strings, SPEC
section 10) that precede the first reply. Output: ``list[str]``, one token per frame.

* ``<SIL>`` while the assistant is silent (listening);
* before the first reply, the last ``M + 2`` silence slots become ``<BOC>`` + the chain's M tokens +
  ``<EOC>``, ending right before ``<BOS>``. The slots available are the S silence frames between the
  previous reply (or the session start) and the reply; when the chain's tokens do not fit in ``S - 2``
  slots, whole leading nodes are kept while they fit (node-level truncation; possibly none, then
  ``<BOC><EOC>`` is still written when S >= 2);
* each reply (assistant utterance): ``<BOS>`` at the frame where its audio starts, its text tokens
  one per frame, ``<PAD>`` until its audio ends (after any cut), then ``<EOS>``; the channel is
  extended by one frame when ``<EOS>`` falls after the session end.

Reject codes: ``text_outruns_audio`` (more reply tokens than audio frames after ``<BOS>``),
``assistant_overlap``, ``marker_in_text`` (a reserved marker inside a chain node).
"""

from __future__ import annotations

from collections.abc import Sequence

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import find_markers

from ..ta4 import audio_span, spoken_text
from ..tokenizer import Tokenizer

SIL, BOC, EOC, BOS, PAD, EOS = "<SIL>", "<BOC>", "<EOC>", "<BOS>", "<PAD>", "<EOS>"
FRAME_MS = 80


def fit_chain(chain_nodes: Sequence[str], tokenizer: Tokenizer, slots: int) -> list[str]:
    """Tokens of the longest leading run of whole nodes whose tokens fit in ``slots``."""
    kept: list[str] = []
    for node in chain_nodes:
        pieces = tokenizer.pieces(node)
        if len(kept) + len(pieces) > slots:
            break
        kept.extend(pieces)
    return kept


def render_ct(
    timeline: Timeline, tokenizer: Tokenizer, chain_nodes: Sequence[str] = (), *, frame_ms: int = FRAME_MS
) -> list[str]:
    for i, node in enumerate(chain_nodes):
        if find_markers(node):
            raise RejectError(
                "marker_in_text", f"chain_nodes[{i}]: contains {sorted(set(find_markers(node)))}"
            )
    frame = timeline.sample_rate * frame_ms // 1000
    n = -(-timeline.duration_samples // frame)
    frames = [SIL] * n
    free_from = 0  # first frame after the previous reply's <EOS>
    replies = sorted(
        (u for u in timeline.utterances if u.speaker == "assistant"),
        key=lambda u: (u.audio_start_samples, u.id),
    )
    first = True
    for utt in replies:
        start, end = audio_span(utt)
        if end <= start:
            continue
        bos = start // frame
        last = (end - 1) // frame
        if bos < free_from:
            raise RejectError(
                "assistant_overlap", f"utterance {utt.id!r}: starts before the previous reply's <EOS>"
            )
        tokens = tokenizer.pieces(spoken_text(utt))
        if len(tokens) > last - bos:
            raise RejectError(
                "text_outruns_audio",
                f"utterance {utt.id!r}: {len(tokens)} reply tokens but {last - bos} audio frames after <BOS>",
            )
        if first and chain_nodes:
            slots = bos - free_from  # S: silence frames before this reply
            if slots >= 2:
                chain = fit_chain(chain_nodes, tokenizer, slots - 2)
                block = [BOC, *chain, EOC]
                frames[bos - len(block) : bos] = block
        first = False
        while len(frames) < last + 2:
            frames.append(SIL)  # <EOS> may fall one frame past the session end
        frames[bos] = BOS
        frames[bos + 1 : bos + 1 + len(tokens)] = tokens
        for f in range(bos + 1 + len(tokens), last + 1):
            frames[f] = PAD
        frames[last + 1] = EOS
        free_from = last + 2
    return frames
