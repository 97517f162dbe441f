"""Values sealed into bytes before a shuffle, so the runner moves bytes, not objects.

Why: records without a registered coder are pickled by the runner at every fusion break, and
also, for its size metrics, for a sample of every step's outputs; a GroupByKey of the DirectRunner
decodes each value twice (the grouping and the consumer). A planned session (pydantic seed,
annotation, plan and speakers) took ~3 picklings and 2 unpicklings on its way through
``GroupSession``, an aligned utterance about as many: on a prompt-only rerun, where every cached
stage is cheap, that was ~10 % of the per-seed cost. A :class:`Sealed` value is pickled once where
it enters a shuffle and unpickled once where it is used (:meth:`Sealed.open`); in between the
runner copies a bytes object.
No reject codes.
"""

from __future__ import annotations

import pickle
from typing import Any


class Sealed:
    """A value carried as its pickle; two are equal when their bytes are."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    @classmethod
    def of(cls, value: Any) -> Sealed:
        return cls(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    def open(self) -> Any:
        return pickle.loads(self.blob)

    def __reduce__(self):
        return (Sealed, (self.blob,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)

    def __repr__(self) -> str:
        return f"Sealed({len(self.blob)} bytes)"
