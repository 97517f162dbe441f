"""Timeline configuration: every knob of time-merge and augmentation, with its distribution.

Input: nothing (defaults of SPEC sections 8, 11, 12) or a dict/YAML subtree (``TimelineConfig(**d)``).
Output: :class:`TimelineConfig`, a frozen record; :class:`Dist` is one configurable distribution,
drawn with :meth:`Dist.draw` from a generator the caller seeds (see :func:`session_rng`) and
recorded in the sample as ``Dist.describe()`` (the ``AugmentationParam.distribution`` string).
No reject codes: a bad config is a configuration error (pydantic ``ValidationError``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The task families (SPEC section 11) are defined once, next to their system prompts.
from duplexloom.prompts import FAMILIES
from duplexloom.schemas.units import CHUNK_MS, DEFAULT_SAMPLE_RATE

# The published mixture (SPEC section 11): pretraining is dominated by duplex dialogue with large
# ASR slices; post-training by interrupt/backchannel/pause plus tool calls.
FAMILY_MIX_PRESETS: dict[str, dict[str, float]] = {
    "pretrain": {
        "dialogue": 0.40,
        "asr_human": 0.20,
        "asr_assistant": 0.15,
        "interpret": 0.05,
        "toolcall": 0.04,
        "interrupt": 0.05,
        "backchannel": 0.04,
        "pause": 0.04,
        "think": 0.03,
    },
    "posttrain": {
        "dialogue": 0.10,
        "asr_human": 0.02,
        "asr_assistant": 0.02,
        "interpret": 0.03,
        "toolcall": 0.25,
        "interrupt": 0.20,
        "backchannel": 0.15,
        "pause": 0.15,
        "think": 0.08,
    },
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dist(_Frozen):
    """A distribution over a real number (seconds, fractions).

    ``fixed``: ``value``; ``uniform``: [low, high); ``normal``: mean/std clipped to [low, high]
    (clipping keeps a long tail from producing negative gaps); ``lognormal``: ``shift +
    exp(N(log(median - shift), sigma))`` clipped to [low, high] -- right-skewed like human reaction
    times (a few fast overlaps when ``shift`` < 0, a long tail of slow ones).
    """

    kind: Literal["fixed", "uniform", "normal", "lognormal"] = "fixed"
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    median: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    shift: float = 0.0

    @model_validator(mode="after")
    def _complete(self) -> Dist:
        need = {
            "fixed": ("value",),
            "uniform": ("low", "high"),
            "normal": ("mean", "std", "low", "high"),
            "lognormal": ("median", "sigma", "low", "high"),
        }
        missing = [k for k in need[self.kind] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{self.kind} distribution needs {missing}")
        if self.low is not None and self.high is not None and self.high < self.low:
            raise ValueError(f"high {self.high} < low {self.low}")
        if self.kind == "lognormal" and self.median <= self.shift:  # type: ignore[operator]
            raise ValueError(f"lognormal median {self.median} must exceed shift {self.shift}")
        return self

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "fixed":
            return float(self.value)  # type: ignore[arg-type]
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.kind == "lognormal":
            x = self.shift + np.exp(rng.normal(np.log(self.median - self.shift), self.sigma))  # type: ignore[operator]
            return float(np.clip(x, self.low, self.high))
        return float(np.clip(rng.normal(self.mean, self.std), self.low, self.high))

    def upper(self) -> float:
        """Largest value a draw can take (validators use it as the configured bound)."""
        return float(self.value) if self.kind == "fixed" else float(self.high)  # type: ignore[arg-type]

    def lower(self) -> float:
        return float(self.value) if self.kind == "fixed" else float(self.low)  # type: ignore[arg-type]

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed({self.value:g})"
        if self.kind == "uniform":
            return f"uniform({self.low:g}, {self.high:g})"
        if self.kind == "lognormal":
            return (
                f"lognormal(median={self.median:g}, sigma={self.sigma:g}, shift={self.shift:g}) "
                f"clipped to [{self.low:g}, {self.high:g}]"
            )
        return f"normal({self.mean:g}, {self.std:g}) clipped to [{self.low:g}, {self.high:g}]"


def fixed(v: float) -> Dist:
    return Dist(kind="fixed", value=v)


def uniform(low: float, high: float) -> Dist:
    return Dist(kind="uniform", low=low, high=high)


def lognormal(median: float, sigma: float, shift: float, low: float, high: float) -> Dist:
    return Dist(kind="lognormal", median=median, sigma=sigma, shift=shift, low=low, high=high)


def bernoulli(p: float) -> str:
    """Description string of a coin flip, for ``AugmentationParam.distribution``."""
    return f"bernoulli({p:g})"


def session_rng(run_seed: int, session_id: str, stage: str) -> np.random.Generator:
    """Generator seeded by a stable hash of (run seed, session id, stage) — never Python's hash()."""
    digest = hashlib.sha256(f"{run_seed}\x1f{session_id}\x1f{stage}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class TimelineConfig(_Frozen):
    """All timeline knobs (SPEC section 12 defaults). Seconds at the edge; code converts to samples."""

    sample_rate: int = DEFAULT_SAMPLE_RATE
    chunk_ms: int = CHUNK_MS

    # --- time-merge -------------------------------------------------------------------------
    lead_in_s: Dist = Field(default_factory=lambda: uniform(0.16, 0.8))  # silence before the first turn
    tail_s: Dist = Field(default_factory=lambda: uniform(0.32, 0.96))  # silence after the last audio
    # user end -> assistant onset (SPEC 12): median 0.3 s, ~78 % in 0.1-0.7 s, ~2 % slight overlaps
    # (down to -0.15 s), ~2.6 % longer than 1 s.
    response_gap_s: Dist = Field(default_factory=lambda: lognormal(0.3, 0.45, -0.2, -0.15, 2.5))
    inter_turn_gap_s: Dist = Field(default_factory=lambda: uniform(0.3, 1.2))  # assistant end -> user
    fade_ms: float = 8.0  # ramp on a cut so the stop is not a click

    # --- interrupt (barge-in) ---------------------------------------------------------------
    barge_in_prob: float = Field(default=0.5, ge=0, le=1)
    barge_in_families: tuple[str, ...] = ("interrupt", "dialogue")
    # <interrupt> label (the start of its chunk) -> assistant stop: 0.16-0.48 s, so the assistant
    # speaks through the label chunk and stops 1-3 chunks later (SPEC 8, 12).
    stop_delay_s: Dist = Field(default_factory=lambda: uniform(0.16, 0.48))
    barge_in_position: Dist = Field(default_factory=lambda: uniform(0.2, 0.6))  # fraction of host audio
    min_host_tail_s: float = 0.3  # the host must still be speaking this long after the stop
    ambiguous_ack_prob: float = Field(default=0.3, ge=0, le=1)  # "you are right, but ..." hard case

    # --- backchannel ------------------------------------------------------------------------
    backchannel_prob: float = Field(default=0.5, ge=0, le=1)  # per assistant turn
    backchannel_families: tuple[str, ...] = ("backchannel", "dialogue")
    backchannel_position: Dist = Field(default_factory=lambda: uniform(0.2, 0.7))  # fraction of words
    backchannel_gap_s: Dist = Field(default_factory=lambda: uniform(0.0, 0.2))  # after the word boundary
    backchannel_min_words_after: int = 2  # the assistant keeps speaking at least this many words
    backchannel_host_after_s: float = 0.3  # ... and at least this long after the feedback ends

    # --- pause (hesitation inside a user turn) ----------------------------------------------
    pause_prob: float = Field(default=0.5, ge=0, le=1)  # per user turn
    pause_families: tuple[str, ...] = ("pause", "dialogue")
    pause_s: Dist = Field(default_factory=lambda: uniform(0.5, 2.0))
    filler_prob: float = Field(default=0.5, ge=0, le=1)
    filler_split: Dist = Field(default_factory=lambda: uniform(0.2, 0.6))  # share of pause before filler

    # --- tool calls -------------------------------------------------------------------------
    tool_trigger_delay_s: Dist = Field(default_factory=lambda: uniform(0.0, 0.32))  # after the anchor's end
    request_position: Dist = Field(default_factory=lambda: uniform(0.1, 0.5))  # backchannel_action

    # --- families ---------------------------------------------------------------------------
    family_mix: dict[str, float] = Field(default_factory=lambda: dict(FAMILY_MIX_PRESETS["pretrain"]))
    # Cognition on the TA4 action channel (SPEC sections 10, 14): in these families the annotation's
    # per-second cognition and/or chain nodes become think actions (timeline/cognition.py).
    think_families: tuple[str, ...] = ("think",)
    think_sources: tuple[Literal["cognition", "chains"], ...] = ("cognition", "chains")
    # When an augmentation's own family drew no occurrence, force one (recorded as forced=True):
    # an "interrupt" sample without an interruption teaches nothing.
    force_family_augmentation: bool = True

    @field_validator("family_mix")
    @classmethod
    def _known_families(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {list(FAMILIES)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("family weights must be >= 0 with a positive sum")
        return v

    @classmethod
    def preset(cls, name: Literal["pretrain", "posttrain"], **overrides: object) -> TimelineConfig:
        """A config with the family mix of preset ``name``."""
        return cls(family_mix=dict(FAMILY_MIX_PRESETS[name]), **overrides)  # type: ignore[arg-type]

    def samples(self, seconds: float) -> int:
        """Seconds -> integer samples at the session rate (edges only)."""
        return int(round(seconds * self.sample_rate))

    @property
    def chunk_samples(self) -> int:
        return self.sample_rate * self.chunk_ms // 1000
