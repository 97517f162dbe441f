"""Seeded random number generators: the one home of the project's stable seeds.

Every random draw comes from a generator seeded by a stable hash of (run seed, record id, stage)
(DESIGN.md rule 7), never from Python's ``hash()`` (salted per process) or a global generator.
Here, in ``schemas/``, because every layer draws (timeline, speaker library, annotators, trainer).

Two hash forms exist and both are frozen: changing either changes every draw, and so the bytes of
every shard, trained model and QA sample already made.

- :func:`stable_seed` / :func:`seeded_rng`: sha256 of ``"{run_seed}\\x1f{record_id}\\x1f{stage}"``,
  first 8 bytes little-endian (sessions, speakers, annotation, families).
- :func:`parts_seed`: blake2b-64 of the ``\\x1f``-joined parts, big-endian (seeds keyed by
  strings only: an action's label phrase, the trainer's crops and codebooks).

No reject codes.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(run_seed: int, record_id: str, stage: str) -> int:
    """A 64-bit seed from (run seed, record id, stage), identical across processes and machines."""
    digest = hashlib.sha256(f"{run_seed}\x1f{record_id}\x1f{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def seeded_rng(run_seed: int, record_id: str, stage: str) -> np.random.Generator:
    """Generator seeded by :func:`stable_seed` (run seed, record id, stage)."""
    return np.random.default_rng(stable_seed(run_seed, record_id, stage))


def parts_seed(*parts: object) -> int:
    """A 64-bit seed from any parts (``str()`` of each, joined by ``\\x1f``; blake2b, big-endian)."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")
