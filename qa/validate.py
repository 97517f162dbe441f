"""Validate shards: every SPEC invariant on every sample (``duplexloom validate``).

Input: shard paths (any Beam filesystem) and the tokenizer the run declared. Output: a
:class:`ValidationResult` (samples seen, violations with shard, key and chunk). Runs the
shard-level checks of :mod:`duplexloom.qa.checks` and, on every sample that decodes, the core
validators ``duplexloom.timeline.validate.check_timeline`` (a ``RejectError`` becomes one
violation with its code) and ``check_chunks`` (SPEC sections 5-7).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from duplexloom.qa.checks import Violation, check_decoded, check_members
from duplexloom.qa.semantic import check_sample as check_semantics
from duplexloom.schemas.reject import RejectError
from duplexloom.shardio import ShardSample, iter_shard_samples
from duplexloom.storage import read_bytes
from duplexloom.timeline.sample_codec import DecodedSample, decode_sample
from duplexloom.timeline.tokenizer import Tokenizer, load_tokenizer
from duplexloom.timeline.validate import check_chunks, check_timeline


class TokenizerUnavailable(ValueError):
    """The samples declare a ``tokenizer.json`` that was not given (or differs from the one given)."""


@dataclass
class ValidationResult:
    samples: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def bad_keys(self) -> set[str]:
        return {v.key for v in self.violations}


def _from_core(key: str, v: Violation) -> Violation:
    # check_chunks names the session; a shard's report names the sample by its key
    return dataclasses.replace(v, key=key)


def core_checks(s: DecodedSample, tok: Tokenizer) -> list[Violation]:
    """The core validators: ``check_timeline`` (first RejectError) and ``check_chunks`` (all)."""
    out: list[Violation] = []
    try:
        check_timeline(s.meta.timeline)
    except RejectError as e:
        out.append(Violation(s.key, e.code, e.detail or str(e), source="core"))
    out += [
        _from_core(s.key, v)
        for v in check_chunks(s.meta.timeline, s.chunks, tok, s.meta.budget, lag_chunks=s.meta.asr_lag_chunks)
    ]
    return out


class TokenizerResolver:
    """Loads the tokenizer each sample declares: the builtin one, or the ``tokenizer.json`` given on
    the command line (its sha256 must match the one recorded in the sample)."""

    def __init__(self, tokenizer_path: str | None = None) -> None:
        self.path = tokenizer_path
        self._sha: str | None = None

    def for_sample(self, s: DecodedSample) -> Tokenizer:
        info = s.meta.tokenizer
        if info.kind == "builtin":
            return load_tokenizer(None)
        if self.path is None:
            raise TokenizerUnavailable(
                f"{s.key} was counted with tokenizer {info.name!r} (sha256 {info.sha256}); pass --tokenizer PATH"
            )
        if self._sha is None:
            self._sha = hashlib.sha256(read_bytes(self.path)).hexdigest()
        if info.sha256 and info.sha256 != self._sha:
            raise TokenizerUnavailable(
                f"{s.key} was counted with {info.name!r} sha256 {info.sha256}, {self.path} has {self._sha}"
            )
        return load_tokenizer(self.path)


def semantic_checks(s: DecodedSample) -> list[Violation]:
    """SPEC 17 on a stored sample (``validate --semantic``): each failed check as a violation
    ``semantic_<check>`` with its chunk."""
    rep = check_semantics(
        s.key,
        s.meta.timeline,
        list(s.chunks),
        s.user_audio,
        s.assistant_audio,
        action_channel=s.meta.action_channel or None,
        lag_chunks=s.meta.asr_lag_chunks,
    )
    return [
        Violation(s.key, f"semantic_{f.check}", f.detail, chunk=f.chunk, source="semantic")
        for f in rep.failures
    ]


def validate_sample(
    raw: ShardSample, resolver: TokenizerResolver, semantic: bool = False
) -> tuple[DecodedSample | None, list[Violation]]:
    """All violations of one raw sample; the decoded sample when it decodes. ``semantic`` adds the
    SPEC 17 self-check from the audio."""
    found = check_members(raw.key, raw.members)
    decoded: DecodedSample | None = None
    if not found:
        decoded = decode_sample(raw.key, raw.members)
        tok = resolver.for_sample(decoded)
        found = check_decoded(decoded) + core_checks(decoded, tok)
        if semantic:
            found += semantic_checks(decoded)
    return decoded, [replace(v, shard=raw.shard) for v in found]


def iter_validated(
    samples: Iterable[ShardSample], tokenizer_path: str | None = None, semantic: bool = False
) -> Iterator[tuple[ShardSample, DecodedSample | None, list[Violation]]]:
    resolver = TokenizerResolver(tokenizer_path)
    for raw in samples:
        decoded, found = validate_sample(raw, resolver, semantic)
        yield raw, decoded, found


def validate_shards(
    paths: list[str],
    tokenizer_path: str | None = None,
    on_violation: Callable[[Violation], None] | None = None,
    semantic: bool = False,
) -> ValidationResult:
    """Validate every sample of ``paths``; ``on_violation`` sees each violation as it is found."""
    result = ValidationResult()
    for _raw, _decoded, found in iter_validated(iter_shard_samples(paths), tokenizer_path, semantic):
        result.samples += 1
        result.violations += found
        if on_violation is not None:
            for v in found:
                on_violation(v)
    return result
