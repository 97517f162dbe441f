"""The annotator protocol, seeded randomness and the family choice shared by all annotators.

An annotator turns one :class:`~duplexloom.schemas.seed.Seed` into one
:class:`~duplexloom.schemas.annotation.Annotation` for a task family, or raises
``RejectError(code, detail)`` for a seed it cannot annotate (errors are data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

import numpy as np

from duplexloom.prompts import FAMILIES
from duplexloom.schemas.annotation import Annotation
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.seed import Seed

from .config import AnnotatorConfig

STAGE = "annotate"


class Annotator(Protocol):
    name: str

    async def annotate(self, seed: Seed, family: str, rng: np.random.Generator) -> Annotation:
        """Annotate one seed for ``family``; raise ``RejectError`` for a bad or unannotatable seed."""
        ...


def stable_seed(run_seed: int, record_id: str, stage: str) -> int:
    """A 64-bit seed from (run seed, record id, stage); hashlib, never ``hash()`` (salted per process)."""
    digest = hashlib.sha256(f"{run_seed}\x1f{record_id}\x1f{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def seed_rng(run_seed: int, seed_id: str, stage: str = STAGE) -> np.random.Generator:
    return np.random.default_rng(stable_seed(run_seed, seed_id, stage))


def resolve_family(seed: Seed, config: AnnotatorConfig, family_for: Callable[[Seed], str] | None) -> str:
    """family_for(seed), else the seed's requested family, else the configured default."""
    family = family_for(seed) if family_for is not None else (seed.family or config.default_family)
    if family not in FAMILIES:
        raise RejectError("unknown_family", f"family {family!r} is not one of {list(FAMILIES)}")
    return family
