"""What an aligner returns: :class:`Alignment`, per-word and per-character spans of one utterance.

Spans are ``TimedSpan`` in utterance-local samples at ``sample_rate``, half-open; ``confidence``
is in [0, 1]; ``coverage`` is how the word spans cover the speech (:class:`.energy.Coverage`, what
the align stage's quality guard scores). Its own module so that the interface (:mod:`.base`) and
the span builder (:mod:`.ctc_path`) share it without importing each other. No reject codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from duplexloom.schemas import TimedSpan

from .energy import Coverage


@dataclass(frozen=True)
class Alignment:
    """Word and character spans (utterance-local samples at ``sample_rate``) and a confidence."""

    words: tuple[TimedSpan, ...]
    chars: tuple[TimedSpan, ...]
    confidence: float
    sample_rate: int
    coverage: Coverage | None = None
