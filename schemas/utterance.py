"""Utterances with word and character times (integer samples), on one of two clocks.

* :class:`ClipUtterance`: an utterance on its own clip's clock (sample 0 = the clip's first audio
  sample, the clip ``n_samples`` long): what the build stage makes of an aligned clip and what
  ``timeline.sound.cover_sound`` fits to the clip's sound.
* :class:`Utterance`: an utterance placed on the session clock (sample 0 = the session's start):
  what a :class:`~.timeline.Timeline` holds and every reader of a sample sees.

Two types, so a value on one clock cannot be passed where the other is expected (a ``Timeline``
refuses a ``ClipUtterance``); :meth:`ClipUtterance.placed_at` is the one way from the first to the
second.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Record

UtteranceKind = Literal["turn", "backchannel", "interrupt", "filler", "request"]


class TimedSpan(Record):
    """A word or character and its half-open ``[start_samples, end_samples)`` interval."""

    text: str
    start_samples: int = Field(ge=0)
    end_samples: int = Field(ge=0)
    confidence: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimedSpan:
        if self.end_samples < self.start_samples:
            raise ValueError(f"word {self.text!r}: end {self.end_samples} before start {self.start_samples}")
        return self

    def shifted(self, offset_samples: int) -> TimedSpan:
        return self.model_copy(
            update={
                "start_samples": self.start_samples + offset_samples,
                "end_samples": self.end_samples + offset_samples,
            }
        )


class _SpokenUtterance(Record):
    """What both clocks share: who says what, and its word/character spans (on the subclass's clock)."""

    id: str
    speaker: Literal["user", "assistant"]
    speaker_id: str | None = None
    lang: Literal["zh", "en"]
    text: str
    kind: UtteranceKind = "turn"
    turn_index: int | None = None
    words: tuple[TimedSpan, ...] = ()
    chars: tuple[TimedSpan, ...] = ()


class ClipUtterance(_SpokenUtterance):
    """One utterance on its clip's clock: spans count from the clip's first sample; the clip's
    audio is ``[0, n_samples)``."""

    n_samples: int = Field(default=0, ge=0)
    align_confidence: float | None = None

    def placed_at(self, offset_samples: int) -> Utterance:
        """This utterance on the session clock, its clip's first sample at ``offset_samples``."""
        return Utterance(
            id=self.id,
            speaker=self.speaker,
            speaker_id=self.speaker_id,
            lang=self.lang,
            text=self.text,
            kind=self.kind,
            turn_index=self.turn_index,
            words=tuple(s.shifted(offset_samples) for s in self.words),
            chars=tuple(s.shifted(offset_samples) for s in self.chars),
            audio_start_samples=offset_samples,
            audio_end_samples=offset_samples + self.n_samples,
            align_confidence=self.align_confidence,
        )


class Utterance(_SpokenUtterance):
    """One utterance of one speaker on the session clock.

    ``audio_start_samples`` and ``audio_end_samples`` bound the audio actually on the track (after
    an interruption cut). Made from a clip's utterance by ``ClipUtterance.placed_at``.
    """

    audio_start_samples: int = Field(default=0, ge=0)
    audio_end_samples: int = Field(default=0, ge=0)
    cut_samples: int | None = None  # where an interrupted assistant utterance was cut (session clock)
    align_confidence: float | None = None
