"""The annotator protocol and the seeded randomness shared by all annotators.

An annotator turns one :class:`~duplexloom.schemas.seed.Seed` into one
:class:`~duplexloom.schemas.annotation.Annotation` for the task family its caller decided (the
annotate stage, ``duplexloom.timeline.families.choose_family``; the annotator never chooses one),
or raises ``RejectError(code, detail)`` for a seed it cannot annotate (errors are data).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from duplexloom.schemas.annotation import Annotation
from duplexloom.schemas.family import Family
from duplexloom.schemas.seed import Seed

STAGE = "annotate"


class Annotator(Protocol):
    name: str

    async def annotate(self, seed: Seed, family: Family, rng: np.random.Generator) -> Annotation:
        """Annotate one seed for ``family``; raise ``RejectError`` for a bad or unannotatable seed."""
        ...


def stable_seed(run_seed: int, record_id: str, stage: str) -> int:
    """A 64-bit seed from (run seed, record id, stage); hashlib, never ``hash()`` (salted per process)."""
    digest = hashlib.sha256(f"{run_seed}\x1f{record_id}\x1f{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def seed_rng(run_seed: int, seed_id: str, stage: str = STAGE) -> np.random.Generator:
    return np.random.default_rng(stable_seed(run_seed, seed_id, stage))
