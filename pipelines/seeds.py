"""Stage ``seeds``: read seed files line by line, parse, dedup, and decide per shard what to (re)do.

Input: paths/globs of JSON-lines seed files (any FileSystems scheme). Blank lines are not seeds
(counted as ``blank_lines``); every other line ends in a :class:`Seed` or a :class:`Reject`.
A shard finished by an earlier run is skipped (resume) unless its state holds a transient reject:
then it is recomputed, so a rerun retries the seeds an outage cost.
Output: ``(shard, (Seed, ...))`` batches of the surviving seeds (deterministic: id order), ``(shard, Reject)`` on the ``rejects`` tag and
one :class:`ShardPlan` per shard on the ``plans`` tag (whether the shard is finished already, see
:mod:`.shards`).

Seed ids: a line whose JSON has a usable string ``id`` is grouped (and sharded) by that id, so
duplicates meet in one place; the first line in (file, line) order wins and every later one is
rejected ``duplicate_id``. Rejects of this stage are keyed by ``<file>:<line>`` (what the user must
fix), with the seed id in ``extra`` when there is one.

Hostile input (docs/DECISIONS.md, "Seed lines"): a UTF-8 byte-order mark before a line is
dropped; NaN/Infinity, numbers past float range or past Python's 4300-digit integer limit, nesting
deeper than :data:`MAX_JSON_DEPTH` and lone surrogates are rejects, not crashes; in turn texts and
topics, line breaks and tabs become spaces, and any other control character (NUL, ESC of an ANSI
sequence, DEL, C1) rejects the line, so none reaches the token stream or a trace.

Reject codes: ``invalid_encoding``, ``line_too_long``, ``invalid_json``, ``missing_field``,
``invalid_id``, ``unsupported_language``, ``empty_text``, ``text_too_long``, ``marker_in_text``,
``control_char_in_text``, ``empty_seed``, ``invalid_seed``, ``duplicate_id``, ``key_collision``.
All are final (bad data, see ``schemas/reject.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from pydantic import ValidationError

from duplexloom import storage
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.shards import load_finished_state
from duplexloom.schemas import Reject, RejectError, Seed
from duplexloom.schemas.reject import is_transient
from duplexloom.schemas.tokens import find_control

STAGE = "seeds"
PLANS = "plans"
MAX_LINE_BYTES = 4 * 1024 * 1024  # a line this long is refused before JSON parsing
MAX_JSON_DEPTH = 64  # nesting (objects and arrays) a seed line may have; a seed needs 4
BOM = b"\xef\xbb\xbf"
# Line breaks and tabs inside a text are word separators: they become one space each.
_SPACE_LIKE = re.compile("[\t\n\v\f\r\x85\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class InputError(RuntimeError):
    """A seeds path that cannot be read: the job refuses to start, with this message."""


@dataclass(frozen=True)
class SeedLine:
    path: str
    lineno: int  # 1-based
    raw: bytes

    @property
    def location(self) -> str:
        return f"{self.path}:{self.lineno}"


@dataclass(frozen=True)
class ParsedLine:
    location: str
    path: str
    lineno: int
    basis: str  # seed id when the JSON has a usable one, else the location
    line_sha: str
    seed: Seed | None = None
    reject: Reject | None = None


@dataclass(frozen=True)
class ShardPlan:
    shard: int
    input_digest: str  # sha256 over the shard's (location, line sha) list
    n_lines: int
    skip: bool = False
    state: dict[str, Any] | None = field(default=None, compare=False)


# ---- pure parsing ----------------------------------------------------------------------------


def _code_for(err: ValidationError) -> tuple[str, str]:
    """The most useful reject code for a Seed validation error, and a one-line detail."""
    errors = err.errors()
    ranked: list[tuple[int, str, str]] = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e.get("msg", ""))
        if e["type"] == "missing":
            ranked.append((0, "missing_field", f"missing field {loc!r}"))
        elif e["loc"][:1] == ("lang",):
            ranked.append((1, "unsupported_language", f"language {e.get('input')!r} is not one of zh, en"))
        elif e["loc"][:1] == ("id",):
            ranked.append((2, "invalid_id", f"id: {msg}"))
        elif "reserved marker" in msg:
            ranked.append((3, "marker_in_text", f"{loc}: {msg}"))
        elif "is empty" in msg:
            ranked.append((4, "empty_text", f"{loc}: {msg}"))
        elif "over the limit" in msg:
            ranked.append((5, "text_too_long", f"{loc}: {msg}"))
        else:
            ranked.append((6, "invalid_seed", f"{loc}: {msg}"))
    ranked.sort()
    return ranked[0][1], ranked[0][2]


def usable_id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        v = obj.get("id")
        if isinstance(v, str) and 0 < len(v) <= 200 and v.strip() == v and v.isprintable():
            return v
    return None


def _no_constant(name: str) -> Any:
    raise RejectError("invalid_json", f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise RejectError("invalid_json", f"number {text[:40]!r} is out of range")
    return v


def load_json_line(raw: bytes) -> Any:
    """Strict JSON of one line: UTF-8 (a leading BOM dropped), no NaN/Infinity, finite numbers,
    nesting at most :data:`MAX_JSON_DEPTH`, no lone surrogates; :class:`RejectError` otherwise."""
    if len(raw) > MAX_LINE_BYTES:
        raise RejectError("line_too_long", f"{len(raw)} bytes, over the limit of {MAX_LINE_BYTES}")
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RejectError("invalid_encoding", f"not UTF-8: {e}") from None
    try:
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise RejectError("invalid_json", f"{e.msg} at column {e.colno}") from None
    except RecursionError:
        raise RejectError("invalid_json", f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # an integer past Python's digit limit
        raise RejectError("invalid_json", f"number out of range: {str(e)[:200]}") from None
    _check_values(obj)
    return obj


def _check_values(obj: Any) -> None:
    """Depth and string checks over the parsed line, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise RejectError("invalid_json", f"nested deeper than {MAX_JSON_DEPTH} levels")
            items = list(node.items()) if isinstance(node, dict) else [(None, v) for v in node]
            for k, v in items:
                if k is not None:
                    stack.append((k, depth))
                stack.append((v, depth + 1))
        elif isinstance(node, str) and _SURROGATE.search(node):
            raise RejectError("invalid_encoding", "a string holds a lone UTF-16 surrogate (not text)")


def _clean_text(text: Any, where: str) -> Any:
    if not isinstance(text, str):
        return text  # the schema reports the type
    text = _SPACE_LIKE.sub(" ", text)
    bad = find_control(text)
    if bad is not None:
        raise RejectError("control_char_in_text", f"{where} holds control character U+{ord(bad):04X}")
    return text


def _clean_texts(obj: dict[str, Any]) -> dict[str, Any]:
    """Turn texts and the topic with line breaks as spaces; other control characters are rejects."""
    out = dict(obj)
    if "topic" in out:
        out["topic"] = _clean_text(out["topic"], "topic")
    turns = out.get("turns")
    if isinstance(turns, list):
        out["turns"] = [
            {**t, "text": _clean_text(t["text"], f"turns.{i}.text")}
            if isinstance(t, dict) and "text" in t
            else t
            for i, t in enumerate(turns)
        ]
    return out


def parse_seed_line(raw: bytes) -> Seed:
    """One JSON line -> :class:`Seed`; raises :class:`RejectError` for a bad line."""
    return seed_from_json(load_json_line(raw))


def seed_from_json(obj: Any) -> Seed:
    if not isinstance(obj, dict):
        raise RejectError("invalid_json", f"expected a JSON object, got {type(obj).__name__}")
    if "id" in obj and usable_id(obj) is None:
        raise RejectError(
            "invalid_id",
            f"id must be a non-empty printable string without edge spaces, got {obj['id']!r}"[:300],
        )
    obj = _clean_texts(obj)
    try:
        seed = Seed.model_validate(obj)
    except ValidationError as e:
        code, detail = _code_for(e)
        raise RejectError(code, detail[:500]) from None
    if not seed.turns and not seed.topic:
        raise RejectError("empty_seed", "a seed needs turns or a topic")
    return seed


def parse_line(line: SeedLine, policy: str = "reject") -> ParsedLine:
    sha = hashlib.sha256(line.raw).hexdigest()
    obj, reject = call_routed(STAGE, line.location, load_json_line, line.raw, policy=policy)
    basis = (usable_id(obj) if reject is None else None) or line.location
    seed = None
    if reject is None:
        seed, reject = call_routed(STAGE, line.location, seed_from_json, obj, policy=policy)
    if reject is not None and basis != line.location:
        reject = reject.model_copy(update={"extra": {**reject.extra, "seed_id": basis}})
    return ParsedLine(line.location, line.path, line.lineno, basis, sha, seed, reject)


def dedup(lines: list[ParsedLine]) -> tuple[list[Seed], list[Reject]]:
    """First valid seed per id (in file, line order) survives; later ones are ``duplicate_id``."""
    seeds: list[Seed] = []
    rejects: list[Reject] = []
    first_at: dict[str, str] = {}
    key_owner: dict[str, str] = {}
    for pl in sorted(lines, key=lambda p: (p.path, p.lineno)):
        if pl.reject is not None:
            rejects.append(pl.reject)
        elif pl.seed is not None:
            key = sample_key(pl.seed.id)
            if pl.seed.id not in first_at and key_owner.get(key, pl.seed.id) != pl.seed.id:
                rejects.append(
                    Reject(
                        record_id=pl.location,
                        stage=STAGE,
                        code="key_collision",
                        detail=f"id {pl.seed.id!r} has the sample key {key!r} of id {key_owner[key]!r}",
                        extra={"seed_id": pl.seed.id},
                    )
                )
            elif pl.seed.id in first_at:
                rejects.append(
                    Reject(
                        record_id=pl.location,
                        stage=STAGE,
                        code="duplicate_id",
                        detail=f"id {pl.seed.id!r} already used at {first_at[pl.seed.id]}",
                        extra={"seed_id": pl.seed.id},
                    )
                )
            else:
                first_at[pl.seed.id] = pl.location
                key_owner[key] = pl.seed.id
                seeds.append(pl.seed)
    return seeds, rejects


def input_digest(lines: list[ParsedLine]) -> str:
    h = hashlib.sha256()
    for pl in sorted(lines, key=lambda p: (p.path, p.lineno)):
        h.update(f"{pl.location}\x1f{pl.line_sha}\n".encode())
    return h.hexdigest()


def resolve_inputs(patterns: list[str] | tuple[str, ...]) -> list[str]:
    """Every pattern must match at least one readable file; else :class:`InputError`."""
    paths: list[str] = []
    for pat in patterns:
        try:
            found = storage.match(pat)
        except (OSError, ValueError) as e:
            raise InputError(f"seeds path {pat!r} cannot be read: {e}") from None
        if not found:
            raise InputError(f"seeds path {pat!r} matches no file (check the path and your credentials)")
        folders = [f for f in found if "://" not in f and os.path.isdir(f)]
        if folders:
            raise InputError(
                f"seeds path {pat!r} matches the folder {folders[0]!r}; give files or a glob such as "
                f"'{folders[0].rstrip('/')}/*.jsonl'"
            )
        paths += found
    return sorted(set(paths))


# ---- Beam ------------------------------------------------------------------------------------


class ReadSeedLines(beam.DoFn):
    """path -> one :class:`SeedLine` per non-blank line."""

    def __init__(self) -> None:
        self.blank = Metrics.counter(STAGE, "blank_lines")
        self.read = Metrics.counter(STAGE, "lines_read")

    def process(self, path: str):
        with storage.open_read(path) as f:
            for i, raw in enumerate(read_lines(f), start=1):
                raw = raw.rstrip(b"\r")
                if not raw.strip():
                    self.blank.inc()
                    continue
                self.read.inc()
                yield SeedLine(path, i, raw)


def read_lines(f, max_bytes: int = MAX_LINE_BYTES):
    """The lines of a binary file without their ``\\n``, streamed: a line longer than
    ``max_bytes`` comes as its first ``max_bytes + 1`` bytes (rejected ``line_too_long``), so a
    file of one endless line costs no more memory than a long line. A final newline ends the last
    line; it does not start a new one."""
    while True:
        raw = f.readline(max_bytes + 1)
        if not raw:
            return
        if raw.endswith(b"\n"):
            yield raw[:-1]
            continue
        if len(raw) > max_bytes:  # too long: skip the rest of the line
            rest = raw
            while rest and not rest.endswith(b"\n"):
                rest = f.readline(1 << 20)
        yield raw


class PlanShards(beam.DoFn):
    """(shard, [ParsedLine]) -> batches of surviving seeds, rejects and the shard's :class:`ShardPlan`."""

    def __init__(self, out_dir: str, digest: str, resume: bool, batch_size: int) -> None:
        self.out_dir = out_dir
        self.batch_size = batch_size
        self.digest = digest
        self.resume = resume
        self.skipped = Metrics.counter(STAGE, "shards_skipped_on_resume")
        self.retried = Metrics.counter(STAGE, "shards_rerun_for_transient_rejects")

    def process(self, kv):
        shard, lines = kv
        lines = list(lines)
        digest = input_digest(lines)
        if self.resume:
            state = load_finished_state(self.out_dir, shard, config_digest=self.digest, input_digest=digest)
            if state is not None and any(is_transient(r["code"]) for r in state["rejects"]):
                # A transient reject (service down, engine crash, I/O) may succeed now: the shard is
                # recomputed; its other seeds come back from the caches with the same bytes.
                self.retried.inc()
                state = None
            if state is not None:
                self.skipped.inc()
                yield beam.pvalue.TaggedOutput(PLANS, ShardPlan(shard, digest, len(lines), True, state))
                return
        seeds, rejects = dedup(lines)
        for r in rejects:
            yield beam.pvalue.TaggedOutput(REJECTS, (shard, r))
        # Deterministic annotation batches: the shard's seeds in id order, batch_size at a time.
        seeds.sort(key=lambda s: s.id)
        for i in range(0, len(seeds), self.batch_size):
            yield (shard, tuple(seeds[i : i + self.batch_size]))
        yield beam.pvalue.TaggedOutput(PLANS, ShardPlan(shard, digest, len(lines)))


class ReadSeeds(beam.PTransform):
    """paths -> main ``(shard, (Seed, ...))`` batches, ``rejects`` ``(shard, Reject)``, ``plans``."""

    def __init__(
        self,
        paths: list[str],
        *,
        num_shards: int,
        out_dir: str,
        config_digest: str,
        resume: bool,
        batch_size: int = 8,
        policy: str = "reject",
    ) -> None:
        super().__init__()
        self.paths = paths
        self.num_shards = num_shards
        self.out_dir = out_dir
        self.config_digest = config_digest
        self.resume = resume
        self.batch_size = batch_size
        self.policy = policy

    def expand(self, pbegin):
        n, policy = self.num_shards, self.policy
        return (
            pbegin
            | "Paths" >> beam.Create(self.paths)
            | "ReadLines" >> beam.ParDo(ReadSeedLines())
            | "Parse" >> beam.Map(lambda line: parse_line(line, policy))
            | "KeyByShard" >> beam.Map(lambda pl: (shard_of(sample_key(pl.basis), n), pl))
            | "GroupByShard" >> beam.GroupByKey()
            | "DedupAndResume"
            >> beam.ParDo(
                PlanShards(self.out_dir, self.config_digest, self.resume, self.batch_size)
            ).with_outputs(REJECTS, PLANS, main="seeds")
        )
