"""Validators: a timeline before serialization, and a serialization against every SPEC 5-7 invariant.

* :func:`check_timeline` (input side) raises ``RejectError`` on the first problem, its detail
  starting with the field path (``utterances[1].words[0]: ...``). Codes: ``duplicate_id``,
  ``time_out_of_session``, ``word_overlap``, ``marker_in_text``, ``unknown_tool``,
  ``invalid_arguments``, ``invalid_action``, ``unknown_family``.
* :func:`check_chunks` (output side) returns every :class:`Violation` found. Codes:
  ``chunk_count``, ``chunk_index``, ``missing_anchor``, ``anchor_mismatch``, ``text_outruns_audio``,
  ``over_budget``, ``pieces_mismatch``, ``token_count_mismatch``, ``unknown_action``,
  ``action_missing``, ``action_text_mismatch``, ``action_interleaved``, ``action_not_closed``,
  ``starts_before_trigger``, ``start_order``, ``toolcall_json``, ``marker_in_user_words``,
  ``user_words_mismatch``, ``asr_missing``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from duplexloom.prompts import FAMILIES, validate_arguments
from duplexloom.schemas.action import BUILTIN_ACTION_NAMES, ActionObject
from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import TOOLCALL_BEGIN, TOOLCALL_END, VAD_SILENCE, find_markers

from .actions import render_action
from .asr import asr_actions
from .clock import ChunkGrid
from .fifo import join_pieces
from .ta4 import anchor_schedule
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class Violation:
    """One broken invariant of a sample: the one violation type of the validators (this module's
    :func:`check_chunks`, the shard checks of ``qa/checks.py``, the QA report). ``key`` is the
    sample key (the session id when a timeline is checked before it has one); ``chunk`` is
    ``None`` for sample-wide problems; ``source`` says which validator found it."""

    key: str
    code: str
    detail: str
    chunk: int | None = None
    shard: str = ""
    source: str = "core"  # "core" (this module), "qa" (shard-level checks), "semantic" (SPEC 17)

    def format(self) -> str:
        where = f"{self.shard}:" if self.shard else ""
        chunk = f" chunk {self.chunk}" if self.chunk is not None else ""
        return f"{where}{self.key}{chunk}: {self.code}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {
            "shard": self.shard,
            "key": self.key,
            "chunk": self.chunk,
            "code": self.code,
            "detail": self.detail,
            "source": self.source,
        }


def _s(samples: int, sr: int) -> str:
    return f"{samples / sr:.3f} s"


def _markers(text: str | None, path: str) -> None:
    if text:
        found = find_markers(text)
        if found:
            raise RejectError(
                "marker_in_text", f"{path}: contains reserved marker string(s) {sorted(set(found))}"
            )


def check_timeline(timeline: Timeline) -> None:
    """Raise ``RejectError`` for the first problem of ``timeline`` (see the module docstring)."""
    sr, dur = timeline.sample_rate, timeline.duration_samples
    if timeline.family not in FAMILIES:
        raise RejectError("unknown_family", f"family: {timeline.family!r} is not one of {list(FAMILIES)}")
    seen: set[str] = set()
    words_by_speaker: dict[str, list[tuple[int, int, str]]] = {}
    for i, u in enumerate(timeline.utterances):
        path = f"utterances[{i}]"
        if u.id in seen:
            raise RejectError("duplicate_id", f"{path}.id: {u.id!r} is used twice")
        seen.add(u.id)
        # Words first: an utterance's text and audio span default to its words' in the input.
        for j, w in enumerate(u.words):
            wpath = f"{path}.words[{j}]"
            if not w.text:
                raise RejectError("invalid_word", f"{wpath}.text: empty word")
            _markers(w.text, f"{wpath}.text")
            if w.end_samples > dur:
                raise RejectError(
                    "time_out_of_session",
                    f"{wpath}.end_s: {w.text!r} ends at {_s(w.end_samples, sr)}, after the session end {_s(dur, sr)}",
                )
            words_by_speaker.setdefault(u.speaker, []).append((w.start_samples, w.end_samples, wpath))
        _markers(u.text, f"{path}.text")
        for name in ("audio_start_samples", "audio_end_samples"):
            t = getattr(u, name)
            if t > dur:
                raise RejectError(
                    "time_out_of_session",
                    f"{path}.{name.replace('_samples', '_s')}: {_s(t, sr)} is after the session end {_s(dur, sr)}",
                )
        if u.audio_end_samples < u.audio_start_samples:
            raise RejectError("time_out_of_session", f"{path}.audio_end_s: before audio_start_s")
        if u.cut_samples is not None and u.cut_samples > dur:
            raise RejectError(
                "time_out_of_session", f"{path}.cut_s: {_s(u.cut_samples, sr)} is after the session end"
            )
    for speaker, words in words_by_speaker.items():
        words.sort()
        for (_s0, e0, p0), (s1, _e1, p1) in zip(words, words[1:], strict=False):
            if s1 < e0:
                raise RejectError(
                    "word_overlap",
                    f"{p1}.start_s: {speaker} word starts at {_s(s1, sr)}, before {p0} ends at {_s(e0, sr)}",
                )
    aseen: set[str] = set()
    for k, a in enumerate(timeline.actions):
        path = f"actions[{k}]"
        if a.id in aseen:
            raise RejectError("duplicate_id", f"{path}.id: {a.id!r} is used twice")
        aseen.add(a.id)
        if a.offset_samples > dur:
            raise RejectError(
                "time_out_of_session",
                f"{path}.offset_s: {_s(a.offset_samples, sr)} is after the session end {_s(dur, sr)}",
            )
        _markers(a.planning, f"{path}.planning")
        _markers(a.text, f"{path}.text")
        _markers(a.anchor, f"{path}.anchor")
        if a.name not in BUILTIN_ACTION_NAMES:
            try:
                validate_arguments(a.name, a.parameters)
            except RejectError as e:
                field = "name" if e.code == "unknown_tool" else "parameters"
                raise RejectError(e.code, f"{path}.{field}: {e.detail}") from None
            _markers(json.dumps(a.parameters or {}, ensure_ascii=False), f"{path}.parameters")
        try:
            render_action(a, lang=timeline.lang, phrase_rng_seed=timeline.session_id)
        except RejectError as e:
            raise RejectError(e.code, f"{path}: {e.detail}") from None


def expected_actions(timeline: Timeline, grid: ChunkGrid, tokenizer: Tokenizer, lag_chunks: int = 2):
    """Timeline actions (minus stale ``asr_rule`` ones) and the derived ASR actions of both sides."""
    own = [a for a in timeline.actions if a.provenance != "asr_rule"]
    derived = {
        side: asr_actions(timeline, tokenizer, grid, side, lag_chunks=lag_chunks)
        for side in ("user", "assistant")
    }
    return own, derived


def check_chunks(
    timeline: Timeline,
    chunks: list[ChunkRecord],
    tokenizer: Tokenizer,
    budget: int = 10,
    *,
    lag_chunks: int = 2,
) -> list[Violation]:
    """Every SPEC 5-7 invariant violated by ``chunks`` (empty list when the serialization is sound)."""
    key = timeline.session_id
    out: list[Violation] = []

    def bad(chunk: int | None, code: str, detail: str) -> None:
        out.append(Violation(key, code, detail, chunk))

    grid = ChunkGrid(timeline.sample_rate)
    n = grid.n_chunks(timeline.duration_samples)
    if len(chunks) < n:
        bad(None, "chunk_count", f"{len(chunks)} chunks for a session of {n}")
    try:
        anchors = anchor_schedule(timeline, tokenizer, grid)
    except RejectError as e:
        bad(None, e.code, e.detail)
        anchors = None
    heard: dict[int, list[str]] = {}
    for u in timeline.utterances:
        if u.speaker == "user":
            for w in u.words:
                heard.setdefault(grid.chunk_of(max(w.end_samples - 1, w.start_samples)), []).append(w.text)

    # Per-chunk checks, and the global piece stream for the per-action checks.
    stream: list[tuple[int, str, str, bool]] = []  # (chunk, action_id, text, closes)
    for i, ch in enumerate(chunks):
        if ch.chunk != i:
            bad(i, "chunk_index", f"record says chunk {ch.chunk}")
        if not ch.anchor:
            bad(i, "missing_anchor", "empty anchor")
        elif anchors is not None:
            want = anchors[i] if i < n else VAD_SILENCE
            if ch.anchor != want:
                bad(i, "anchor_mismatch", f"anchor {ch.anchor!r}, expected {want!r}")
        count = tokenizer.count(ch.action_text)
        if count > budget:
            bad(i, "over_budget", f"{count} tokens > budget {budget}: {ch.action_text!r}")
        if count != ch.action_tokens:
            bad(i, "token_count_mismatch", f"record says {ch.action_tokens} tokens, tokenizer counts {count}")
        joined = join_pieces(ch.pieces)
        if joined != ch.action_text:
            bad(i, "pieces_mismatch", f"pieces give {joined!r}, action_text is {ch.action_text!r}")
        for w in ch.user_words:
            if find_markers(w):
                bad(i, "marker_in_user_words", f"user word {w!r}")
        if list(ch.user_words) != heard.get(i, []):
            bad(i, "user_words_mismatch", f"{list(ch.user_words)} != words ending here {heard.get(i, [])}")
        stream.extend((i, p.action_id, p.text, p.closes) for p in ch.pieces)

    own, derived = expected_actions(timeline, grid, tokenizer, lag_chunks)
    present = {aid for _, aid, _, _ in stream}
    expected: list[ActionObject] = list(own)
    for side, acts in derived.items():
        got = [a for a in acts if a.id in present]
        if got and len(got) != len(acts):
            missing = sorted(a.id for a in acts if a.id not in present)
            bad(None, "asr_missing", f"{side} transcript is partial: missing {missing[:5]}")
        expected.extend(got)
    by_id = {a.id: a for a in expected}
    for aid in sorted(present - set(by_id)):
        bad(None, "unknown_action", f"pieces of action {aid!r}, which is neither in the timeline nor derived")

    # Contiguity and closing: each action is one run of pieces, closing exactly at its last piece.
    runs: dict[str, list[tuple[int, str, bool]]] = {}
    order: list[str] = []
    prev = None
    for chunk, aid, text, closes in stream:
        if aid != prev:
            if aid in runs:
                bad(chunk, "action_interleaved", f"action {aid!r} resumes after another action started")
            else:
                order.append(aid)
                runs[aid] = []
            if prev is not None and runs[prev] and not runs[prev][-1][2]:
                bad(chunk, "action_interleaved", f"action {aid!r} starts before {prev!r} closed")
        runs[aid].append((chunk, text, closes))
        prev = aid
    for aid, pieces in runs.items():
        if not pieces[-1][2] or any(c for _, _, c in pieces[:-1]):
            bad(pieces[-1][0], "action_not_closed", f"action {aid!r}: closes flags are wrong")

    for a in expected:
        if a.id not in runs:
            bad(None, "action_missing", f"action {a.id!r} ({a.name}) never appears")
            continue
        pieces = runs[a.id]
        text = "".join(t for _, t, _ in pieces)
        try:
            want = render_action(a, lang=timeline.lang, phrase_rng_seed=timeline.session_id)
        except RejectError as e:
            bad(None, e.code, f"action {a.id!r}: {e.detail}")
            continue
        if text != want:
            bad(
                pieces[0][0],
                "action_text_mismatch",
                f"action {a.id!r}: pieces give {text!r}, rendered {want!r}",
            )
        trigger = grid.chunk_of(a.offset_samples)
        if pieces[0][0] < trigger:
            bad(
                pieces[0][0],
                "starts_before_trigger",
                f"action {a.id!r} starts before its trigger chunk {trigger}",
            )
        if not a.is_tool_call:
            continue
        if TOOLCALL_BEGIN not in text or not text.endswith(TOOLCALL_END):
            bad(pieces[0][0], "toolcall_json", f"action {a.id!r}: no tool-call block")
            continue
        body = text[text.index(TOOLCALL_BEGIN) + len(TOOLCALL_BEGIN) : -len(TOOLCALL_END)]
        try:
            obj = json.loads(body)
            if obj.get("function") != a.name:
                raise ValueError(f"function {obj.get('function')!r} != {a.name!r}")
            validate_arguments(a.name, obj.get("arguments"))
        except (ValueError, AttributeError, RejectError) as e:
            bad(pieces[0][0], "toolcall_json", f"action {a.id!r}: {e}")

    queue = sorted(
        (a for a in expected if a.id in runs),
        key=lambda a: (grid.chunk_of(a.offset_samples), a.offset_samples, a.id),
    )
    started = [aid for aid in order if aid in by_id]
    if started != [a.id for a in queue]:
        bad(None, "start_order", f"start order {started[:8]} != queue order {[a.id for a in queue][:8]}")
    return out
