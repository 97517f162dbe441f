"""The annotator protocol shared by all annotators.

An annotator turns one :class:`~duplexloom.schemas.seed.Seed` into one
:class:`~duplexloom.schemas.annotation.Annotation` for the task family its caller decided (the
annotate stage, ``duplexloom.timeline.families.choose_family``; the annotator never chooses one),
or raises ``RejectError(code, detail)`` for a seed it cannot annotate (errors are data). Its generator is ``schemas.rng.seeded_rng(run seed, seed id, STAGE)`` (the one
seeded-RNG home).
"""

from __future__ import annotations

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
