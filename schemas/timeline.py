"""The two-track session timeline: utterances of both speakers, actions, augmentation draws."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .action import ActionObject
from .base import SCHEMA_VERSION, Record
from .units import DEFAULT_SAMPLE_RATE
from .utterance import Utterance


class AugmentationParam(Record):
    """One drawn parameter and the distribution it was drawn from (SPEC section 12)."""

    name: str
    value: Any
    distribution: str  # e.g. "uniform(0.5, 2.0)", "bernoulli(0.5)", "fixed"
    target: str | None = None  # the utterance or action it applies to


class Timeline(Record):
    schema_version: str = SCHEMA_VERSION
    session_id: str
    sample_rate: int = DEFAULT_SAMPLE_RATE
    duration_samples: int = Field(ge=0)
    family: str = "dialogue"
    lang: str = "zh"
    utterances: tuple[Utterance, ...] = ()
    actions: tuple[ActionObject, ...] = ()
    augmentation: tuple[AugmentationParam, ...] = ()
