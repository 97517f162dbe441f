"""Chronological-thinking text channel (SPEC section 16): one token per 80 ms frame.

Input: a :class:`Timeline`, a tokenizer and the thinking-chain nodes (``"{INTENT} ..."`` strings,
SPEC section 10) per user turn: ``chains`` maps a user turn index to that turn's rendered nodes (a
plain sequence still means "before the first reply"). Output: ``list[str]``, one token per frame.

* ``<SIL>`` while the assistant is silent (listening);
* before each reply, the chains of the user turns it answers (those begun after the previous reply
  began and before this one, in turn order) -- so a chain is built only from
  what was said up to that reply, and a later turn's nodes never precede its words' reply. The
  last ``M + 2`` silence slots become ``<BOC>`` + the chain's M tokens + ``<EOC>``, ending right
  before ``<BOS>``; the nodes are written one per line (:data:`~..cognition.NODE_SEP` between
  them) and tokenized as one text. The slots available are the S silence frames between the
  previous reply's ``<EOS>`` (or the session start) and the reply; when the chain's tokens do not
  fit in ``S - 2`` slots, whole leading nodes are kept while they fit (node-level truncation;
  possibly none, then ``<BOC><EOC>`` is still written when S >= 2);
* each reply (assistant utterance): ``<BOS>`` at the frame where its audio starts, its text tokens
  one per frame, ``<PAD>`` until its audio ends (after any cut), then ``<EOS>``; the channel is
  extended by one frame when ``<EOS>`` falls after the session end.

Reject codes: ``text_outruns_audio`` (more reply tokens than audio frames after ``<BOS>``),
``assistant_overlap``, ``marker_in_text`` (a reserved marker inside a chain node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import find_markers

from ..cognition import NODE_SEP
from ..ta4 import audio_span, spoken_text
from ..tokenizer import Tokenizer

SIL, BOC, EOC, BOS, PAD, EOS = "<SIL>", "<BOC>", "<EOC>", "<BOS>", "<PAD>", "<EOS>"
FRAME_MS = 80


def fit_chain(chain_nodes: Sequence[str], tokenizer: Tokenizer, slots: int) -> list[str]:
    """Tokens of the longest leading run of whole nodes (joined by :data:`NODE_SEP`) that fits in
    ``slots``."""
    kept: list[str] = []
    for k in range(1, len(chain_nodes) + 1):
        pieces = tokenizer.pieces(NODE_SEP.join(chain_nodes[:k]))
        if len(pieces) > slots:
            break
        kept = pieces
    return kept


def _user_turn_starts(timeline: Timeline) -> list[tuple[int, int]]:
    """(start sample, turn index) of each user turn on the timeline (its first floor word)."""
    starts: dict[int, int] = {}
    for u in timeline.utterances:
        if u.speaker == "user" and u.turn_index is not None and u.kind in ("turn", "request") and u.words:
            s = u.words[0].start_samples
            starts[u.turn_index] = min(starts.get(u.turn_index, s), s)
    return sorted((s, i) for i, s in starts.items())


def render_ct(
    timeline: Timeline,
    tokenizer: Tokenizer,
    chains: Mapping[int, Sequence[str]] | Sequence[str] = (),
    *,
    frame_ms: int = FRAME_MS,
) -> list[str]:
    by_turn = dict(chains) if isinstance(chains, Mapping) else None
    first_chain = [] if by_turn is not None else list(chains)
    for key, nodes in (by_turn or {None: first_chain}).items():
        for i, node in enumerate(nodes):
            if find_markers(node):
                raise RejectError(
                    "marker_in_text", f"chains[{key}][{i}]: contains {sorted(set(find_markers(node)))}"
                )
    turn_starts = _user_turn_starts(timeline)
    prev_start = -1
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
        if by_turn is not None:  # the turns this reply answers: begun since the previous reply began
            nodes = [n for s, i in turn_starts if prev_start < s < start for n in by_turn.get(i, ())]
        else:
            nodes = first_chain if first else []
        if nodes:
            slots = bos - free_from  # S: silence frames before this reply
            if slots >= 2:
                chain = fit_chain(nodes, tokenizer, slots - 2)
                block = [BOC, *chain, EOC]
                frames[bos - len(block) : bos] = block
        first = False
        prev_start = start
        while len(frames) < last + 2:
            frames.append(SIL)  # <EOS> may fall one frame past the session end
        frames[bos] = BOS
        frames[bos + 1 : bos + 1 + len(tokens)] = tokens
        for f in range(bos + 1 + len(tokens), last + 1):
            frames[f] = PAD
        frames[last + 1] = EOS
        free_from = last + 2
    return frames
