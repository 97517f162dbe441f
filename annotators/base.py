"""The annotator protocol and the family choice shared by all annotators.

An annotator turns one :class:`~duplexloom.schemas.seed.Seed` into one
:class:`~duplexloom.schemas.annotation.Annotation` for a task family, or raises
``RejectError(code, detail)`` for a seed it cannot annotate (errors are data). Its generator is
``schemas.rng.seeded_rng(run seed, seed id, STAGE)`` (the one seeded-RNG home).
"""

from __future__ import annotations

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


def resolve_family(seed: Seed, config: AnnotatorConfig, family_for: Callable[[Seed], str] | None) -> str:
    """family_for(seed), else the seed's requested family, else the configured default."""
    family = family_for(seed) if family_for is not None else (seed.family or config.default_family)
    if family not in FAMILIES:
        raise RejectError("unknown_family", f"family {family!r} is not one of {list(FAMILIES)}")
    return family
