"""Dataset statistics for the report's dataset page.

Input: decoded samples (one at a time, :meth:`DatasetStats.add`), their violations, and optionally
the Beam job's ``summary.json`` and ``rejects.jsonl``. Output: counts per family / language / label /
tool / violation code, hours, and timing histograms (``duplexloom.timeline.timing``), plus the
session statistics only a shard knows (duration, FIFO start lag, action-channel fill).
No reject codes: unreadable reject lines are counted as ``unparsable``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from duplexloom.qa.checks import Violation
from duplexloom.schemas.units import chunk_samples
from duplexloom.timeline.sample_codec import DecodedSample
from duplexloom.timeline.timing import DEFAULT_BINS, histograms, merge_stats, timing_stats

# Session statistics measured here, with the bins the dataset page uses.
QA_BINS: dict[str, list[float] | int] = {
    "session_duration_s": 20,
    "fifo_start_lag_chunks": [float(i) for i in range(0, 21)],
    "action_fill_ratio": [i / 10 for i in range(0, 11)],
}


@dataclass
class DatasetStats:
    samples: int = 0
    seconds: float = 0.0
    seconds_by_family: Counter[str] = field(default_factory=Counter)
    samples_by_family: Counter[str] = field(default_factory=Counter)
    samples_by_lang: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    tools: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    bad_samples: int = 0
    undecodable: int = 0
    timing: dict[str, list[float]] = field(default_factory=dict)

    def add(self, s: DecodedSample | None, violations: list[Violation]) -> None:
        self.violations.update(v.code for v in violations)
        self.bad_samples += int(bool(violations))
        if s is None:
            self.undecodable += 1
            return
        tl = s.meta.timeline
        sr = tl.sample_rate
        clen = chunk_samples(sr, s.meta.chunk_ms)
        self.samples += 1
        dur = tl.duration_samples / sr
        self.seconds += dur
        self.seconds_by_family[s.meta.family] += dur
        self.samples_by_family[s.meta.family] += 1
        self.samples_by_lang[s.meta.lang] += 1
        for a in tl.actions:
            if a.is_tool_call:
                self.labels["tool call"] += 1
                self.tools[a.name] += 1
            else:
                self.labels[a.name] += 1
        own = {a.id for a in tl.actions}
        derived = {p.action_id for c in s.chunks for p in c.pieces} - own
        self.labels["asr (derived)"] += len(derived)
        first_chunk: dict[str, int] = {}
        for c in s.chunks:
            for p in c.pieces:
                first_chunk.setdefault(p.action_id, c.chunk)
        lags = [
            float(first_chunk[a.id] - a.offset_samples // clen) for a in tl.actions if a.id in first_chunk
        ]
        fill = [c.action_tokens / s.meta.budget for c in s.chunks if s.meta.budget]
        mine = {"session_duration_s": [dur], "fifo_start_lag_chunks": lags, "action_fill_ratio": fill}
        self.timing = merge_stats(self.timing, merge_stats(timing_stats(tl), mine))

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def histograms(self) -> dict[str, dict[str, Any]]:
        bins: dict[str, Any] = {**DEFAULT_BINS, **QA_BINS}
        return {k: histograms(v, bins.get(k, 20)) for k, v in sorted(self.timing.items()) if v}


def reject_counts(lines: list[str]) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], str]]:
    """(stage, code) -> count, and one example ``record_id: detail`` per pair, from rejects.jsonl."""
    counts: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key = (str(r.get("stage", "?")), str(r.get("code", "?")))
            text = f"{r.get('record_id', '?')}: {r.get('detail', '')}"
        except (json.JSONDecodeError, AttributeError):
            key, text = ("?", "unparsable"), line[:200]
        counts[key] += 1
        example.setdefault(key, text)
    return counts, example


def find_histograms(obj: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Every histogram-shaped dict (``edges`` + ``counts``) inside a run summary, by its JSON path."""
    out: dict[str, dict[str, Any]] = {}
    if isinstance(obj, dict):
        if isinstance(obj.get("edges"), list) and isinstance(obj.get("counts"), list):
            return {path or "histogram": obj}
        for k, v in obj.items():
            out.update(find_histograms(v, f"{path}.{k}" if path else str(k)))
    return out
