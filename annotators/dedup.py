"""Near-duplicate filter (thefuzz ratio > threshold on normalized text, the CT recipe), run-wide.

Comparing every pair is quadratic, so candidates are blocked first by MinHash LSH bands: each
normalized text gets ``BANDS * ROWS`` minhashes of its character ``SHINGLE``-grams; each band of
``ROWS`` minhashes is one blocking key. Two texts whose shingle sets have Jaccard similarity J share
a key with probability ``1 - (1 - J**ROWS)**BANDS`` (J = 0.6: 0.997; J = 0.1: 0.02), and texts with
a ratio above 90 share most shingles, so only texts sharing a key are compared (after a length
filter, since ``ratio <= 200 * min_len / (len_a + len_b)``). Everything is a pure function of the
texts: the hashes are blake2b (never ``hash()``, salted per process) and the minhash permutations
are fixed constants.

Which one is kept is fixed by the ids, not by arrival order: in ascending id order a record is
dropped when it is similar to a record kept before it, naming the smallest such kept id
(:func:`resolve_drops`). The Beam step (``duplexloom.pipelines.dedup``) runs the blocking and the
comparisons in parallel and resolves the (few) similar pairs in one place, so the result does not
depend on bundling or on ``annotate_batch_size``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from thefuzz import fuzz

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
SHINGLE = 3
BANDS = 24
ROWS = 3
_rng = np.random.default_rng(20240917)  # fixed constants of the permutation family, not a draw per run
_MASKS = _rng.integers(0, 2**63, size=BANDS * ROWS, dtype=np.uint64) * np.uint64(2)
_MULTS = _rng.integers(0, 2**62, size=BANDS * ROWS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
del _rng


def normalize(text: str) -> str:
    """Case-folded NFKC text without whitespace and punctuation (works for zh and en alike)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def _shingle_hashes(norm: str) -> np.ndarray:
    if len(norm) <= SHINGLE:
        grams = {norm}
    else:
        grams = {norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
            for g in sorted(grams)
        ],
        dtype=np.uint64,
    )


def band_keys(norm: str) -> list[str]:
    """The LSH blocking keys of one normalized text (``BANDS`` strings, band index included)."""
    h = _shingle_hashes(norm)
    with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
        mins = ((h[None, :] ^ _MASKS[:, None]) * _MULTS[:, None]).min(axis=1)
    rows = mins.reshape(BANDS, ROWS)
    return [f"{b}:" + hashlib.blake2b(rows[b].tobytes(), digest_size=8).hexdigest() for b in range(BANDS)]


def similarity(a: str, b: str) -> int:
    """thefuzz ratio of two already-normalized texts."""
    return fuzz.ratio(a, b)


def length_compatible(a: str, b: str, threshold: int) -> bool:
    """Whether the ratio of texts this long can exceed ``threshold`` at all."""
    return 200 * min(len(a), len(b)) > threshold * (len(a) + len(b))


def similar_pairs(block: Iterable[tuple[str, str]], threshold: int) -> list[tuple[str, str, int]]:
    """(smaller id, larger id, ratio) for every pair in one block above ``threshold``."""
    items = sorted(set(block))
    out = []
    for i, (id_a, a) in enumerate(items):
        for id_b, b in items[i + 1 :]:
            if id_a == id_b or not length_compatible(a, b, threshold):
                continue
            score = similarity(a, b)
            if score > threshold:
                out.append((min(id_a, id_b), max(id_a, id_b), score))
    return out


def resolve_drops(pairs: Iterable[tuple[str, str, int]]) -> dict[str, tuple[str, int]]:
    """dropped id -> (kept id, ratio): in ascending id order, a record similar to an already kept
    one is dropped (naming the smallest such kept id); the kept one is fixed by the ids."""
    smaller: dict[str, dict[str, int]] = defaultdict(dict)
    for a, b, score in pairs:
        smaller[b][a] = max(score, smaller[b].get(a, 0))
    ids = sorted(set(smaller) | {a for nb in smaller.values() for a in nb})
    drops: dict[str, tuple[str, int]] = {}
    for x in ids:
        kept = sorted(a for a in smaller.get(x, {}) if a not in drops)
        if kept:
            drops[x] = (kept[0], smaller[x][kept[0]])
    return drops


def find_near_duplicates(texts: Iterable[tuple[str, str]], threshold: int = 90) -> dict[str, tuple[str, int]]:
    """The whole filter in one process (tests, small runs): (id, raw text) -> drops of :func:`resolve_drops`."""
    blocks: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, text in texts:
        norm = normalize(text)
        for key in band_keys(norm):
            blocks[key].append((rid, norm))
    pairs = {
        p[:2]: p for members in blocks.values() if len(members) > 1 for p in similar_pairs(members, threshold)
    }
    return resolve_drops(pairs.values())


def too_similar(a: str, b: str, threshold: int = 90) -> int | None:
    """The score when ``a`` and ``b`` are near-duplicates, else None (one pair, no blocking)."""
    score = similarity(normalize(a), normalize(b))
    return score if score > threshold else None
