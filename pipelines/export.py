"""Exports for existing trainers (SPEC section 16): the shared part of ``duplexloom export``.

Input: WebDataset shards (SPEC section 13), matched by glob patterns through Beam's
``FileSystems`` so ``gs://`` and ``s3://`` shards read the same as local ones. Each sample is
decoded with :func:`duplexloom.timeline.sample_codec.decode_sample` into a ``DecodedSample``.
Output: whatever the chosen exporter writes under a *local* output folder (trainers read local
files; copy the folder to a bucket afterwards if needed), plus the rejects file (one
:class:`~duplexloom.schemas.reject.Reject` per sample that could not be exported; named by the
exporter's ``rejects_file``, default ``rejects.jsonl``) and ``export_summary.json``. A sample the
format has no use for (an exporter raises :class:`SkipSample`) is counted under ``skipped`` and
its key listed in ``skipped_keys``: it is not a reject, the data is fine.

Exporters register themselves with :func:`register_exporter`; ``moshi`` lives in
``export_moshi.py``, ``nemo`` in ``export_nemo.py``.

Reject codes (stage ``export``):
- ``bad_sample``: a shard sample is missing a required member or does not decode.
- ``empty_session``: the sample's audio tracks are empty.
- ``word_outside_audio``: a word of a heard utterance ends after the end of the audio track.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import ValidationError

from duplexloom.audio import resample as _resample
from duplexloom.schemas.reject import Reject, RejectError
from duplexloom.schemas.utterance import TimedSpan, Utterance
from duplexloom.shardio import expand_shards, iter_shard_members
from duplexloom.timeline.sample_codec import DecodedSample, decode_sample

STAGE = "export"


class SkipSample(Exception):
    """Raised by an exporter's ``add`` for a sample its format has no use for (counted, not rejected)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class Exporter(Protocol):
    """Writes samples under one output folder; ``close`` writes the per-export files (manifests).
    An exporter may set ``rejects_file`` (a name under the output folder)."""

    def add(self, sample: DecodedSample) -> dict[str, float]: ...

    def close(self) -> list[Path]: ...


_EXPORTERS: dict[str, tuple[str, str]] = {
    # name -> (module, factory); imported lazily so `export moshi` never imports lhotse.
    "moshi": ("duplexloom.pipelines.export_moshi", "MoshiExporter"),
    "nemo": ("duplexloom.pipelines.export_nemo", "NemoExporter"),
}


def register_exporter(name: str, module: str, factory: str) -> None:
    _EXPORTERS[name] = (module, factory)


def exporter_names() -> list[str]:
    return sorted(_EXPORTERS)


def make_exporter(name: str, out_dir: Path, **options: object) -> Exporter:
    if name not in _EXPORTERS:
        raise ValueError(f"unknown export format {name!r}; choose one of {exporter_names()}")
    module, factory = _EXPORTERS[name]
    return getattr(importlib.import_module(module), factory)(out_dir, **options)


# ---------------------------------------------------------------------------------------------
# Reading shards


def match_shards(patterns: Sequence[str]) -> list[str]:
    """Every shard path named by the specs (:func:`duplexloom.shardio.expand_shards`: globs, brace
    ranges, folders), sorted, without duplicates."""
    paths: set[str] = set()
    for pattern in patterns:
        try:
            paths.update(expand_shards(pattern))
        except FileNotFoundError:
            continue
    if not paths:
        raise FileNotFoundError(f"no shard matches {list(patterns)}")
    return sorted(paths)


def decode_or_reject(key: str, members: dict[str, bytes]) -> DecodedSample:
    """:func:`decode_sample`, with a malformed sample turned into a ``bad_sample`` reject."""
    try:
        sample = decode_sample(key, members)
    except (KeyError, ValueError, ValidationError) as err:  # pydantic's error is a ValueError too
        raise RejectError("bad_sample", str(err)[:500]) from err
    if len(sample.user_audio) == 0 or len(sample.assistant_audio) == 0:
        raise RejectError("empty_session", f"{key}: audio tracks are empty")
    return sample


# ---------------------------------------------------------------------------------------------
# Helpers shared by the exporters (pure)


def resample(audio: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling (:func:`duplexloom.audio.resample`); float32 in, float32 out."""
    return _resample(audio, orig_sr, new_sr)


def heard_span(utt: Utterance) -> tuple[int, int]:
    """``[start, end)`` samples of the utterance's audio actually on its track (after any cut).

    ``audio_end_samples`` not after ``audio_start_samples`` means "not set" (records straight from
    TTS); the word times then bound the utterance.
    """
    start, end = utt.audio_start_samples, utt.audio_end_samples
    if end <= start:
        if not utt.words:
            return start, start
        start = min(w.start_samples for w in utt.words)
        end = max(w.end_samples for w in utt.words)
    if utt.cut_samples is not None:
        end = min(end, utt.cut_samples)
    return start, max(start, end)


def heard_words(utt: Utterance) -> list[TimedSpan]:
    """The words a listener hears. Without a cut: all of them. With a cut: the words that start
    before it, the last one clipped to it (the rest were never put on the track)."""
    if utt.cut_samples is None:
        return list(utt.words)
    _, end = heard_span(utt)
    return [
        w if w.end_samples <= end else w.model_copy(update={"end_samples": end})
        for w in utt.words
        if w.start_samples < end
    ]


def heard_text(utt: Utterance) -> str:
    """The utterance's text as heard: the full text unless it was cut, else the heard words."""
    if utt.cut_samples is None or not utt.words:
        return utt.text
    sep = "" if utt.lang == "zh" else " "
    return sep.join(w.text for w in heard_words(utt))


def check_words_inside(sample: DecodedSample) -> None:
    """Reject a sample whose heard words run past the end of its audio tracks."""
    n = min(len(sample.user_audio), len(sample.assistant_audio))
    for utt in sample.meta.timeline.utterances:
        for w in heard_words(utt):
            if w.end_samples > n:
                raise RejectError(
                    "word_outside_audio",
                    f"{sample.key}: {utt.id} word {w.text!r} ends at {w.end_samples} > track length {n}",
                )


# ---------------------------------------------------------------------------------------------
# The driver


@dataclass
class ExportSummary:
    format: str
    out_dir: str
    shards: int = 0
    samples: int = 0
    rejects: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    reject_codes: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_keys: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


def run_export(
    fmt: str,
    shard_patterns: Sequence[str],
    out_dir: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    **options: object,
) -> ExportSummary:
    """Export every sample of the shards to ``out_dir`` in format ``fmt``; return the summary.

    A sample that cannot be exported becomes a line of ``rejects.jsonl``; nothing disappears.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = match_shards(shard_patterns)
    exporter = make_exporter(fmt, out, **options)
    summary = ExportSummary(format=fmt, out_dir=str(out), shards=len(paths))
    rejects: list[Reject] = []
    for key, members in iter_shard_members(paths):
        try:
            sample = decode_or_reject(key, members)
            check_words_inside(sample)
            stats = exporter.add(sample)
        except SkipSample as skip:
            summary.skipped[skip.code] = summary.skipped.get(skip.code, 0) + 1
            summary.skipped_keys.append(key)
            continue
        except RejectError as err:
            rejects.append(err.to_reject(key, STAGE))
            summary.reject_codes[err.code] = summary.reject_codes.get(err.code, 0) + 1
            continue
        summary.samples += 1
        summary.audio_s += stats.get("duration_s", 0.0)
        if progress is not None:
            progress(key)
    files = exporter.close()
    rejects_path = out / getattr(exporter, "rejects_file", "rejects.jsonl")
    with rejects_path.open("w", encoding="utf-8") as f:
        for r in rejects:
            f.write(r.model_dump_json() + "\n")
    summary.rejects = len(rejects)
    summary.wall_s = time.perf_counter() - t0
    summary.files = [str(p) for p in [*files, rejects_path]]
    (out / "export_summary.json").write_text(
        json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return summary
