"""One shard sample -> the flat per-chunk token stream the model reads (SPEC sections 2, 3, 15).

Per chunk ``c``::

    <|user_audio_begin|> U U <|user_audio_end|> <|assistant_audio_begin|> T A A A A
    <|assistant_audio_end|> action tokens... <|action_end|>

``U`` positions carry the id ``USER`` and an index into the user-feature array (80 ms log-mel
pairs); their embedding is replaced by the causal front end's output. ``T`` is the chunk's anchor
through the declared tokenizer, ``A`` the codec's 4 codes, action tokens the chunk's action text.

Input: a :class:`DecodedSample`, its assistant codes ``(n_chunks, 4)`` and user features
``(n_chunks * 2, D)``, a chunk window ``[c0, c1)``. Output: :class:`Example` (numpy arrays). Every
position ``p`` predicts the token at ``p + 1``; ``target_cat[p]`` says which channel that target
belongs to (the loss weights and the per-channel reports key on it). Reject code:
``anchor_not_one_token`` (the anchor must be exactly one token of the declared tokenizer).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.tokens import (
    ACTION_END,
    ASSISTANT_AUDIO_BEGIN,
    ASSISTANT_AUDIO_END,
    CONTROL_LABELS,
    TTS_PAD,
    USER_AUDIO_BEGIN,
    USER_AUDIO_END,
    VAD_SILENCE,
)
from duplexloom.schemas.units import USER_FEATURES_PER_CHUNK
from duplexloom.timeline.sample_codec import DecodedSample

from .codec import seed_for
from .vocab import PAD, USER, ModelVocab


class Cat(enum.IntEnum):
    """Channel category of a target token."""

    IGNORE = 0  # user features, padding, nothing to predict
    MARKER = 1
    T_TEXT = 2
    T_SILENCE = 3
    T_PAD = 4
    AUDIO = 5
    AUDIO_SILENT = 6
    ACTION = 7
    LABEL = 8
    ACTION_END = 9
    ACTION_END_EMPTY = 10


CHANNELS: dict[str, tuple[Cat, ...]] = {
    "T": (Cat.T_TEXT, Cat.T_SILENCE, Cat.T_PAD),
    "A": (Cat.AUDIO, Cat.AUDIO_SILENT),
    "action": (Cat.ACTION, Cat.LABEL, Cat.ACTION_END, Cat.ACTION_END_EMPTY),
}
ACTION_CATS = CHANNELS["action"]


@dataclass
class Example:
    key: str
    c0: int  # first chunk of the window (session chunk index)
    input_ids: np.ndarray  # int64 (L,)
    user_slot: np.ndarray  # int64 (L,), index into user_feats or -1
    targets: np.ndarray  # int64 (L,), the token at p + 1 (PAD at the end)
    target_cat: np.ndarray  # int64 (L,), Cat of the target
    target_chunk: np.ndarray  # int64 (L,), session chunk of the target
    user_feats: np.ndarray  # float32 (2 * n_window_chunks, D)

    @property
    def n_chunks(self) -> int:
        return len(self.user_feats) // USER_FEATURES_PER_CHUNK


def chunk_tokens(
    sample: DecodedSample, c: int, codes: np.ndarray, vocab: ModelVocab, slot0: int
) -> tuple[list[int], list[int], list[int]]:
    """(ids, categories, user slots) of chunk ``c``; ``slot0`` is the first user slot of the chunk."""
    rec = sample.chunks[c]
    sp = vocab.special_ids
    anchor = vocab.text(rec.anchor)
    if len(anchor) != 1:
        raise RejectError("anchor_not_one_token", f"{sample.key} chunk {c}: anchor {rec.anchor!r}")
    t_cat = {VAD_SILENCE: Cat.T_SILENCE, TTS_PAD: Cat.T_PAD}.get(rec.anchor, Cat.T_TEXT)
    a_cat = Cat.AUDIO_SILENT if rec.anchor == VAD_SILENCE else Cat.AUDIO
    label_ids = {sp[t] for t in CONTROL_LABELS}
    action = vocab.text(rec.action_text) if rec.action_text else []
    m = Cat.MARKER
    ids = [sp[USER_AUDIO_BEGIN], USER, USER, sp[USER_AUDIO_END], sp[ASSISTANT_AUDIO_BEGIN], anchor[0]]
    cats = [m, Cat.IGNORE, Cat.IGNORE, m, m, t_cat]
    ids += [vocab.audio(a) for a in codes[c]]
    cats += [a_cat] * len(codes[c])
    ids.append(sp[ASSISTANT_AUDIO_END])
    cats.append(m)
    ids += action
    cats += [Cat.LABEL if i in label_ids else Cat.ACTION for i in action]
    ids.append(sp[ACTION_END])
    cats.append(Cat.ACTION_END if action else Cat.ACTION_END_EMPTY)
    slots = [-1] * len(ids)
    slots[1], slots[2] = slot0, slot0 + 1
    return ids, cats, slots


def build_example(
    sample: DecodedSample,
    codes: np.ndarray,
    user_feats: np.ndarray,
    vocab: ModelVocab,
    c0: int,
    c1: int,
    max_positions: int,
) -> Example:
    """The window ``[c0, c1)`` as one example; trailing chunks are dropped to fit ``max_positions``."""
    ids: list[int] = []
    cats: list[int] = []
    slots: list[int] = []
    chunk_of_pos: list[int] = []
    c_end = c0
    for c in range(c0, c1):
        i, k, s = chunk_tokens(sample, c, codes, vocab, (c - c0) * USER_FEATURES_PER_CHUNK)
        if ids and len(ids) + len(i) > max_positions:
            break
        ids += i
        cats += k
        slots += s
        chunk_of_pos += [c] * len(i)
        c_end = c + 1
    if len(ids) > max_positions:
        raise ValueError(f"one chunk has {len(ids)} tokens > max_positions={max_positions}")
    n = len(ids)
    input_ids = np.asarray(ids, dtype=np.int64)
    targets = np.full(n, PAD, dtype=np.int64)
    targets[:-1] = input_ids[1:]
    target_cat = np.zeros(n, dtype=np.int64)
    target_cat[:-1] = np.asarray(cats[1:], dtype=np.int64)
    target_chunk = np.full(n, c_end - 1, dtype=np.int64)
    target_chunk[:-1] = np.asarray(chunk_of_pos[1:], dtype=np.int64)
    feats = user_feats[c0 * USER_FEATURES_PER_CHUNK : c_end * USER_FEATURES_PER_CHUNK]
    return Example(
        key=sample.key,
        c0=c0,
        input_ids=input_ids,
        user_slot=np.asarray(slots, dtype=np.int64),
        targets=targets,
        target_cat=target_cat,
        target_chunk=target_chunk,
        user_feats=np.ascontiguousarray(feats, dtype=np.float32),
    )


def crop_window(key: str, n_chunks: int, max_chunks: int, seed: int, epoch: int) -> tuple[int, int]:
    """Seeded random window of at most ``max_chunks`` chunks (a pure function of seed, epoch, key)."""
    if n_chunks <= max_chunks:
        return 0, n_chunks
    rng = np.random.default_rng(seed_for(seed, key, epoch, "crop"))
    c0 = int(rng.integers(0, n_chunks - max_chunks + 1))
    return c0, c0 + max_chunks
