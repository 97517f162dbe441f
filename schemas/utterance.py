"""Utterances with word and character times (integer samples)."""

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


class Utterance(Record):
    """One utterance of one speaker.

    Times are on the clock of whatever holds the utterance: utterance-local (0 = first audio sample)
    right after TTS/alignment, session clock once placed on a timeline. ``audio_start_samples`` and
    ``audio_end_samples`` bound the audio actually on the track (after an interruption cut).
    """

    id: str
    speaker: Literal["user", "assistant"]
    speaker_id: str | None = None
    lang: Literal["zh", "en"]
    text: str
    kind: UtteranceKind = "turn"
    turn_index: int | None = None
    words: tuple[TimedSpan, ...] = ()
    chars: tuple[TimedSpan, ...] = ()
    audio_start_samples: int = Field(default=0, ge=0)
    audio_end_samples: int = Field(default=0, ge=0)
    cut_samples: int | None = None  # where an interrupted assistant utterance was cut (session clock)
    align_confidence: float | None = None
