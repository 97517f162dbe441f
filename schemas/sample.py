"""Sample metadata: the ``<key>.json`` member of a shard sample (SPEC section 13)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import SCHEMA_VERSION, Record
from .speaker import Speaker
from .timeline import Timeline
from .units import CHUNK_MS


class TokenizerInfo(Record):
    name: str  # "builtin" or the tokenizer.json path's file name
    kind: Literal["builtin", "tokenizers"]
    sha256: str | None = None  # of the tokenizer.json, when one was given


class SampleMeta(Record):
    schema_version: str = SCHEMA_VERSION
    key: str
    family: str
    lang: str
    system_prompt: str
    chunk_ms: int = CHUNK_MS
    budget: int = 10
    asr_lag_chunks: int = 2
    speakers: dict[str, Speaker]  # "user" / "assistant"
    tokenizer: TokenizerInfo
    run_seed: int
    seed_id: str
    provenance: dict[str, Any] = Field(default_factory=dict)  # annotators, prompt hashes, backends
    timeline: Timeline
    layouts: tuple[str, ...] = ("ta4",)
    # What the action channel carries for this sample's family (SPEC 11: asr_user, asr_assistant,
    # labels, tools, think) and whether the run overrode the table for it.
    action_channel: tuple[str, ...] = ()
    action_channel_override: bool = False
    reply_text: str | None = None  # full written answer (cognition family), if any
