"""Near-duplicate filter for generated dialogues (thefuzz similarity with blocking).

A generated dialogue is dropped (reject ``near_duplicate``) when its thefuzz ``ratio`` (0-100) to its
own seed's text, or to a dialogue kept before it, exceeds the threshold (default 90). Comparing
every pair is quadratic, so candidates are blocked first: each text is keyed by the ``k`` smallest
hashes of its character 4-grams (a bottom-k MinHash sketch); texts that similar share most 4-grams,
so they almost surely share a key, and only texts sharing a key (and of compatible length, since
``ratio <= 200 * min_len / (len_a + len_b)``) are compared.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict

from thefuzz import fuzz

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
SHINGLE = 4
SKETCH_K = 8


def normalize(text: str) -> str:
    """Case-folded NFKC text without whitespace and punctuation (works for zh and en alike)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def sketch(norm: str, k: int = SKETCH_K) -> set[int]:
    """Bottom-k hashes of the character shingles (stable across processes: blake2b, not hash())."""
    if len(norm) <= SHINGLE:
        grams = {norm}
    else:
        grams = {norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}
    hashes = sorted(
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams
    )
    return set(hashes[:k])


def similarity(a: str, b: str) -> int:
    """thefuzz ratio of two already-normalized texts."""
    return fuzz.ratio(a, b)


class NearDupIndex:
    """Holds kept texts; :meth:`match` finds a kept text more similar than ``threshold``."""

    def __init__(self, threshold: int = 90) -> None:
        self.threshold = threshold
        self._texts: list[str] = []
        self._ids: list[str] = []
        self._blocks: dict[int, list[int]] = defaultdict(list)
        self.comparisons = 0  # for the benchmark/tests: how much blocking saved

    def _length_ok(self, a: str, b: str) -> bool:
        return 200 * min(len(a), len(b)) > self.threshold * (len(a) + len(b))

    def match(self, text: str) -> tuple[str, int] | None:
        """(id, score) of a kept near-duplicate of ``text``, or None."""
        norm = normalize(text)
        seen: set[int] = set()
        for key in sketch(norm):
            for j in self._blocks.get(key, ()):
                if j in seen:
                    continue
                seen.add(j)
                other = self._texts[j]
                if not self._length_ok(norm, other):
                    continue
                self.comparisons += 1
                score = similarity(norm, other)
                if score > self.threshold:
                    return self._ids[j], score
        return None

    def add(self, record_id: str, text: str) -> None:
        norm = normalize(text)
        j = len(self._texts)
        self._texts.append(norm)
        self._ids.append(record_id)
        for key in sketch(norm):
            self._blocks[key].append(j)


def too_similar(a: str, b: str, threshold: int = 90) -> int | None:
    """The score when ``a`` and ``b`` are near-duplicates, else None (one pair, no blocking)."""
    score = similarity(normalize(a), normalize(b))
    return score if score > threshold else None
