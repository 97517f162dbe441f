"""Annotator configuration: which backend annotates seeds and how (issue 4; SPEC sections 4, 8-11).

``AnnotatorConfig`` is one branch of the run's config tree. The default is the offline annotator:
deterministic, no network, no key. ``backend="llm"`` uses an OpenAI-compatible endpoint through
``LLMConfig``; the API key is read from the environment variable named by ``api_key_env`` at call
time and is never stored in the config, logged, or written to any output.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ToolPattern = Literal["single", "multi", "backchannel_action"]


class LLMConfig(BaseModel):
    """How to reach and drive an OpenAI-compatible chat-completions endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable, never the key itself
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    cognition_temperature: float = Field(default=0.3, ge=0.0, le=2.0)  # SPEC section 10
    max_tokens: int | None = Field(default=2048, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)  # transport attempts per request (429/5xx/timeout)
    max_validation_attempts: int = Field(default=3, ge=1)  # re-asks with the validation error appended
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    retry_after_max_s: float = Field(default=120.0, ge=0)  # cap on an honoured retry-after header
    max_in_flight: int = Field(default=16, ge=1)
    cache_dir: str | None = None  # None: in-memory cache only (per process)
    use_json_schema: bool = True  # False: JSON mode + validation (servers without json_schema)


class AnnotatorConfig(BaseModel):
    """Annotation stage settings: backend, family defaults and the pattern knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["offline", "llm"] = "offline"
    llm: LLMConfig = Field(default_factory=LLMConfig)
    # LLM prompt templates: None = the newest of each (v2); 1 reproduces a v1 run exactly.
    prompt_version: int | None = Field(default=None, ge=1)
    # Not read: the annotate stage decides every seed's family (the seed's own, else a draw from
    # timeline.family_mix) and hands it to the annotator. Kept so configs that set it still load.
    default_family: str = "dialogue"
    # toolcall: patterns drawn (seeded) per seed; multi-action requests carry this many calls.
    tool_patterns: tuple[ToolPattern, ...] = ("single", "multi", "backchannel_action")
    multi_action_count: int = Field(default=2, ge=2, le=4)
    # interrupt/backchannel/pause material per seed.
    n_interruptions: int = Field(default=2, ge=1)
    n_backchannels: int = Field(default=3, ge=1)
    n_fillers: int = Field(default=2, ge=1)
    # Probability that the ambiguous acknowledgement ("you are right" / "你说得对") is used: as the
    # start of an interruption in the interrupt family, as a backchannel in the backchannel family.
    ambiguous_ack_p: float = Field(default=0.5, ge=0.0, le=1.0)
    # Run-wide near-duplicate filter on annotated dialogues (thefuzz ratio 0-100 on normalized text;
    # drop when above; the kept one is the smallest id; pipelines/dedup.py). 100 keeps everything.
    dedup_threshold: int = Field(default=90, ge=0, le=100)
    # Per-second causal cognition (SPEC section 10).
    speech_rate_zh_chars_per_s: float = Field(default=4.0, gt=0)
    speech_rate_en_words_per_s: float = Field(default=2.5, gt=0)
    cognition_char_budget_zh: int = Field(default=24, ge=1)
    cognition_char_budget_en: int = Field(default=80, ge=1)
    cognition_max_turns: int = Field(default=1, ge=1)  # user turns per seed that get a stream (LLM)
    # The spoken answer (voice_response) of the offline annotator: the reply's first sentence or
    # clause, at most this many word units (the full reply stays the written channel).
    voice_max_units_zh: int = Field(default=20, ge=1)
    voice_max_units_en: int = Field(default=12, ge=1)
    think_chains: bool = True  # think family: also ask for a chronological thinking chain
