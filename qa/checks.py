"""Shard-level checks of one sample (SPEC sections 2, 3, 4, 13, 15), on top of the core validators.

Input: a sample's raw members (``dict[suffix, bytes]``) or a :class:`DecodedSample`.
Output: a list of :class:`~duplexloom.timeline.validate.Violation` (``source="qa"``). Nothing raises for bad
data: every problem becomes a violation, so ``validate`` can list them all.

The FIFO, budget, anchor and ASR invariants (SPEC 5-7) are the core's
(``duplexloom.timeline.validate.check_chunks``); this module checks what only a shard can get wrong:

``missing_member`` ``invalid_json`` ``invalid_record`` ``invalid_audio`` (members, SPEC 13);
``chunk_count`` (ceil(duration / 160 ms) chunks; later chunks only as FIFO drain padding),
``audio_length`` (both tracks = chunks x chunk length), ``trace_lines`` ``trace_mismatch``
(the stored trace is the chunks' SPEC 15 rendering);
``toolcall_json`` (every tool-call block, concatenated across chunks, parses as
``{"function": str, "arguments": {}}``);
``marker_in_text`` (SPEC 3: a marker inside user words, utterance or word texts, planning, action
texts, anchors, arguments, prompts).
"""

from __future__ import annotations

import json
import re

from duplexloom.schemas.tokens import TOOLCALL_BEGIN, TOOLCALL_END, VAD_SILENCE, find_markers
from duplexloom.schemas.units import chunk_samples, num_chunks
from duplexloom.timeline.sample_codec import (
    REQUIRED_MEMBERS,
    DecodedSample,
    chunks_from_json,
    decode_flac,
    meta_from_json,
)
from duplexloom.timeline.serialize import trace_line
from duplexloom.timeline.validate import Violation

_TOOLCALL_RE = re.compile(f"({re.escape(TOOLCALL_BEGIN)}|{re.escape(TOOLCALL_END)})")


def _found(key: str, code: str, detail: str, chunk: int | None = None) -> Violation:
    """A violation found by this module's shard-level checks."""
    return Violation(key, code, detail, chunk, source="qa")


def check_members(key: str, members: dict[str, bytes]) -> list[Violation]:
    """Members present, JSON parsable and valid records, audio decodable (SPEC 13)."""
    out = [
        _found(key, "missing_member", f"{key}.{name} is missing")
        for name in REQUIRED_MEMBERS
        if name not in members
    ]
    for name in ("json", "chunks.json"):
        if name not in members:
            continue
        try:
            obj = json.loads(members[name])
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            out.append(_found(key, "invalid_json", f"{key}.{name}: {e}"))
            continue
        try:
            if name == "json":
                meta_from_json(obj)
            else:
                chunks_from_json(obj)
        except (ValueError, TypeError) as e:  # ValidationError and JSONDecodeError are ValueErrors
            first = " / ".join(str(e).splitlines()[:3])
            out.append(_found(key, "invalid_record", f"{key}.{name}: {first}"))
    for name in ("user.flac", "assistant.flac"):
        if name in members:
            try:
                decode_flac(members[name])
            except (
                RuntimeError,
                ValueError,
                TypeError,
            ) as e:  # soundfile's LibsndfileError is a RuntimeError
                out.append(_found(key, "invalid_audio", f"{key}.{name}: {e}"))
    if "trace.txt" in members:
        try:
            members["trace.txt"].decode("utf-8")
        except UnicodeDecodeError as e:
            out.append(_found(key, "invalid_record", f"{key}.trace.txt is not UTF-8: {e}"))
    return out


def _check_clock(s: DecodedSample) -> list[Violation]:
    """Chunk count, track lengths, and the stored trace against the chunks (SPEC 2, 13, 15)."""
    key, meta = s.key, s.meta
    tl = meta.timeline
    out: list[Violation] = []
    clen = chunk_samples(tl.sample_rate, meta.chunk_ms)
    want = num_chunks(tl.duration_samples, clen)
    if len(s.chunks) < want:
        out.append(
            _found(
                key,
                "chunk_count",
                f"{len(s.chunks)} chunks, want ceil({tl.duration_samples} / {clen}) = {want}",
            )
        )
    for c in s.chunks[want:]:
        # The core appends padding chunks only while the FIFO still drains.
        if not c.pieces or c.user_words or c.anchor != VAD_SILENCE:
            out.append(
                _found(
                    key,
                    "chunk_count",
                    f"chunk past the session end ({want} chunks) is not FIFO drain padding",
                    c.chunk,
                )
            )
            break
    padded = len(s.chunks) * clen
    for name, audio in (("user", s.user_audio), ("assistant", s.assistant_audio)):
        if audio.ndim != 1 or audio.shape[0] != padded:
            out.append(
                _found(
                    key,
                    "audio_length",
                    f"{name} track has {audio.shape[0]} samples, want {len(s.chunks)} chunks x {clen} = {padded}",
                )
            )
    lines = s.trace.splitlines()
    if len(lines) != len(s.chunks):
        out.append(_found(key, "trace_lines", f"trace has {len(lines)} lines for {len(s.chunks)} chunks"))
    else:
        for c, line in zip(s.chunks, lines, strict=True):
            if line != trace_line(c):
                out.append(
                    _found(key, "trace_mismatch", f"trace {line!r} != chunks {trace_line(c)!r}", c.chunk)
                )
                break
    return out


def _check_toolcall_stream(s: DecodedSample) -> list[Violation]:
    """Every tool-call block of the action stream, concatenated across chunks, parses (SPEC 4)."""
    out: list[Violation] = []
    open_at: int | None = None
    body: list[str] = []
    for c in s.chunks:
        for part in _TOOLCALL_RE.split(c.action_text):
            if part == TOOLCALL_BEGIN:
                if open_at is not None:
                    out.append(
                        _found(s.key, "toolcall_json", "tool call opens inside an open tool call", c.chunk)
                    )
                open_at, body = c.chunk, []
            elif part == TOOLCALL_END:
                if open_at is None:
                    out.append(_found(s.key, "toolcall_json", "tool call closes without opening", c.chunk))
                    continue
                text = "".join(body)
                try:
                    obj = json.loads(text)
                    if not isinstance(obj, dict) or not isinstance(obj.get("function"), str):
                        raise ValueError("not an object with a string 'function'")
                    if not isinstance(obj.get("arguments", {}), dict):
                        raise ValueError("'arguments' is not an object")
                except ValueError as e:  # JSONDecodeError is a ValueError
                    out.append(
                        _found(s.key, "toolcall_json", f"chunks {open_at}-{c.chunk}: {e}: {text!r}", open_at)
                    )
                open_at = None
            elif open_at is not None:
                body.append(part)
    if open_at is not None:
        out.append(_found(s.key, "toolcall_json", "tool call never closes", open_at))
    return out


def _check_markers(s: DecodedSample) -> list[Violation]:
    """No marker string inside any text that came from data (SPEC 3)."""
    key, meta = s.key, s.meta
    tl = meta.timeline
    clen = chunk_samples(tl.sample_rate, meta.chunk_ms)
    out: list[Violation] = []

    def flag(where: str, text: str | None, chunk: int | None = None) -> None:
        found = find_markers(text) if text else []
        if found:
            out.append(
                _found(key, "marker_in_text", f"{where} contains {sorted(set(found))}: {text!r}", chunk)
            )

    flag("system prompt", meta.system_prompt)
    flag("reply text", meta.reply_text)
    for u in tl.utterances:
        flag(f"utterance {u.id} text", u.text, u.audio_start_samples // clen)
        for w in u.words:
            flag(f"utterance {u.id} word", w.text, w.start_samples // clen)
    for a in tl.actions:
        c = a.offset_samples // clen
        flag(f"action {a.id} planning", a.planning, c)
        flag(f"action {a.id} text", a.text, c)
        flag(f"action {a.id} anchor", a.anchor, c)
        if a.parameters:
            flag(f"action {a.id} arguments", json.dumps(a.parameters, ensure_ascii=False), c)
    for c in s.chunks:
        for w in c.user_words:
            flag("user word", w, c.chunk)
        found = find_markers(c.anchor)
        if found and found != [c.anchor]:
            out.append(_found(key, "marker_in_text", f"anchor T({c.anchor!r}) holds a marker", c.chunk))
    return out


def check_decoded(s: DecodedSample) -> list[Violation]:
    """Every shard-level check of one decoded sample."""
    return _check_clock(s) + _check_toolcall_stream(s) + _check_markers(s)
