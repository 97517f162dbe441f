"""Semantic self-check (SPEC 17): does a sample mean what its action channel says, judged from its audio?

Form checks (budget, order, markers) pass on data that teaches the wrong behaviour. This module
scores one sample the way DuplexSLA-Bench scores a model (its Tables 3 and 4): speech and silence of
each track are read from the **waveforms** (a frame-energy detector of its own), labels and tool
calls are read off the **action channel** (the chunk records' text), and the session's script
(which clip is a user turn, a pause piece, a barge-in, a backchannel, where each clip lies on its
track) comes from the sample's timeline. It deliberately shares no code with the functions that
placed the labels (``timeline.merge``, ``timeline.augment``, ``timeline.sound``): a bug there
cannot hide itself here.

Checks (each applies only where its event exists; seconds at the timeline's rate):

- ``channel``: the action channel carries what SPEC 11's table says for the family (or the run's
  recorded override), nothing else, and the family's own content is there;
- ``early_response`` (every family): the assistant's reply starts no earlier than the user's audio
  end - 0.2 s, and the assistant is silent through the user's turn (pauses included);
- ``early_label`` / ``label_count`` (families carrying labels): one ``<response>`` per user turn
  (``<interrupt>`` per barge-in, ``<backchannel>`` per feedback), in order, never in a chunk before
  the one holding the end of the event's audio (for ``<interrupt>``: not before the barge-in starts);
- ``interrupt_stop``: the assistant is speaking when the user barges in and stops in
  [t_int - 1 s, t_int + 2 s] (t_int = the label's chunk), after the label's chunk (it speaks
  through it), and stays silent until its reply;
- ``backchannel``: ``<backchannel>`` in [feedback start - 0.2 s, feedback end + 2 s], not before
  the chunk of the feedback's end, and the assistant keeps speaking over it;
- ``tool_timing``: a tool call's first token is not before the chunk of its anchor's audio end
  and not later than 1 s after that chunk;
- ``asr_timing``: each user transcript word is written in the chunk of its audio end + lag (each
  assistant word: of its audio start + lag), never earlier, at most 2 chunks later (FIFO spill);
- ``word_spans``: every aligned word span is mostly sound, and almost all of an utterance's sound
  energy lies inside its word spans.

Output: :class:`SemanticReport` (failures with check, chunk and detail; which checks applied; the
audio-measured timings). :func:`reject_code` names the ``semantic_<check>`` reject of a failure.
No reject codes are raised here; ``pipelines/serialize.py`` turns a failing report into a reject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.text_units import CJK_RANGES
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import LABEL_BACKCHANNEL, LABEL_INTERRUPT, LABEL_RESPONSE, TOOLCALL_BEGIN
from duplexloom.schemas.units import chunk_samples
from duplexloom.schemas.utterance import Utterance
from duplexloom.timeline.families import FAMILY_CHANNELS

CHECKS = (
    "channel",
    "early_response",
    "early_label",
    "label_count",
    "interrupt_stop",
    "backchannel",
    "tool_timing",
    "asr_timing",
    "word_spans",
)

# The acceptance windows of SPEC 17 (DuplexSLA-Bench Tables 3 and 4), seconds.
RESPONSE_EARLY_S = 0.2
INTERRUPT_WINDOW_S = (-1.0, 2.0)
BACKCHANNEL_WINDOW_S = (-0.2, 2.0)
TOOL_LATE_S = 1.0
LABEL_LATE_S = 2.0  # a <response> more than this after the turn's end answers nothing
ASR_SPILL_CHUNKS = 2  # a transcript word may be pushed this many chunks late by a busy FIFO

# Word spans: a span is "mostly sound" when at least this share of its frames is voiced, and an
# utterance passes when this share of its sound energy is inside some word span.
SPAN_VOICED_MIN = 0.5
SPAN_SHORT_S = 0.03  # spans shorter than this are too short to judge
COVERAGE_MIN = 0.95
SILENT_SPANS_MAX = 0.1  # share of an utterance's judged spans allowed below SPAN_VOICED_MIN

# The detector: 10 ms frames, voiced when within 45 dB of the track's loudest frame and above
# -60 dBFS (the level SPEC 7 calls sound); a silence shorter than MERGE_GAP_S does not end a stretch of speech.
FRAME_S = 0.01
DETECT_REL_DB = 45.0
DETECT_FLOOR_DB = -60.0
MERGE_GAP_S = 0.35

LABEL_TOKENS = {LABEL_RESPONSE: "response", LABEL_INTERRUPT: "interrupt", LABEL_BACKCHANNEL: "backchannel"}
# Histogram edges of the audio-measured values (seconds; shares for the word-span coverage).
BINS: dict[str, list[float]] = {
    "response_gap_s": [round(-0.3 + 0.1 * i, 1) for i in range(0, 24)],
    "interrupt_stop_after_label_s": [round(-1.0 + 0.1 * i, 1) for i in range(0, 31)],
    "backchannel_label_after_end_s": [round(-0.3 + 0.1 * i, 1) for i in range(0, 24)],
    "tool_first_token_after_anchor_s": [round(-0.16 + 0.16 * i, 2) for i in range(0, 9)],
    "speech_in_word_spans": [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0],
}
# Reference values the summary shows beside the measured distributions (SPEC 12 and 17).
REFERENCE = {
    "response_gap_s": "median ~0.3 s, ~80 % in [0.1, 0.7] s, >= -0.2 s",
    "interrupt_stop_after_label_s": "[0.16, 0.48] s after the label chunk starts; window [-1, 2] s",
    "backchannel_label_after_end_s": "[0, 2] s after the feedback ends (window from start - 0.2 s)",
    "tool_first_token_after_anchor_s": "[0, 1] s after the anchor chunk",
    "speech_in_word_spans": f">= {COVERAGE_MIN}",
}


@dataclass(frozen=True)
class Failure:
    check: str
    detail: str
    chunk: int | None = None


@dataclass
class SemanticReport:
    key: str
    failures: list[Failure] = field(default_factory=list)
    applied: set[str] = field(default_factory=set)
    measured: dict[str, list[float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, check: str, detail: str, chunk: int | None = None) -> None:
        self.applied.add(check)
        self.failures.append(Failure(check, detail, chunk))

    def ok(self, check: str) -> None:
        self.applied.add(check)

    def measure(self, name: str, value: float) -> None:
        self.measured.setdefault(name, []).append(round(float(value), 4))

    def failed_checks(self) -> list[str]:
        return sorted({f.check for f in self.failures})

    def summary(self) -> dict:
        """JSON-ready: checks applied and passed, the audio-measured values."""
        failed = set(self.failed_checks())
        return {
            "checks": {c: c not in failed for c in sorted(self.applied)},
            "measured": {k: list(v) for k, v in sorted(self.measured.items())},
        }

    def describe(self) -> str:
        parts = [
            f"{f.check}" + (f" chunk {f.chunk}" if f.chunk is not None else "") + f": {f.detail}"
            for f in self.failures[:4]
        ]
        more = f" (+{len(self.failures) - 4} more)" if len(self.failures) > 4 else ""
        return f"{self.key}: " + "; ".join(parts) + more


def reject_code(report: SemanticReport) -> str:
    return f"semantic_{report.failures[0].check}"


# ---- speech from the waveform ----------------------------------------------------------------


class Voice:
    """Frame-level speech/silence of one track."""

    def __init__(self, audio: np.ndarray, sample_rate: int) -> None:
        self.sr = sample_rate
        self.hop = max(1, int(round(FRAME_S * sample_rate)))
        n = audio.shape[0] // self.hop
        frames = np.asarray(audio[: n * self.hop], dtype=np.float64).reshape(n, self.hop)
        self.energy = (frames * frames).sum(axis=1)
        level = 10.0 * np.log10(self.energy / self.hop + 1e-20)
        peak = float(level.max()) if n else DETECT_FLOOR_DB
        self.voiced = level > max(peak - DETECT_REL_DB, DETECT_FLOOR_DB)

    def frames(self, start: int, end: int) -> slice:
        return slice(max(0, start // self.hop), max(0, -(-end // self.hop)))

    def first(self, start: int, end: int) -> int | None:
        """First voiced sample in [start, end), frame resolution."""
        sl = self.frames(start, end)
        idx = np.flatnonzero(self.voiced[sl])
        return None if idx.size == 0 else (sl.start + int(idx[0])) * self.hop

    def last_end(self, start: int, end: int) -> int | None:
        """End (exclusive) of the last voiced frame lying wholly before ``end`` (a frame straddling
        ``end`` holds what comes next: the next word's onset)."""
        sl = slice(max(0, start // self.hop), max(0, end // self.hop))
        idx = np.flatnonzero(self.voiced[sl])
        return None if idx.size == 0 else (sl.start + int(idx[-1]) + 1) * self.hop

    def share(self, start: int, end: int) -> float:
        sl = self.frames(start, end)
        v = self.voiced[sl]
        return float(v.mean()) if v.size else 0.0

    def run_end(self, t: int) -> int | None:
        """End of the stretch of speech holding sample ``t`` (gaps < MERGE_GAP_S bridged)."""
        f = t // self.hop
        if f >= self.voiced.shape[0]:
            return None
        gap = int(round(MERGE_GAP_S / FRAME_S))
        lo = max(0, f - gap)
        if not self.voiced[lo : f + 1].any():
            return None
        i, silent = f, 0
        last = f if self.voiced[f] else lo + int(np.flatnonzero(self.voiced[lo : f + 1])[-1])
        while i + 1 < self.voiced.shape[0] and silent < gap:
            i += 1
            if self.voiced[i]:
                last, silent = i, 0
            else:
                silent += 1
        return (last + 1) * self.hop


# ---- the action channel ------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """One action's text as written on the channel: its first chunk, and the chunk of each label."""

    action_id: str
    first_chunk: int
    text: str
    label_chunks: tuple[tuple[str, int], ...]  # (label name, chunk of its token)


def read_channel(chunks: list[ChunkRecord]) -> list[Written]:
    by_id: dict[str, list[tuple[int, str]]] = {}
    order: list[str] = []
    for ch in chunks:
        for piece in ch.pieces:
            if piece.action_id not in by_id:
                by_id[piece.action_id] = []
                order.append(piece.action_id)
            by_id[piece.action_id].append((ch.chunk, piece.text))
    out = []
    for aid in order:
        parts = by_id[aid]
        labels = tuple((name, c) for c, text in parts for tok, name in LABEL_TOKENS.items() if tok in text)
        out.append(Written(aid, parts[0][0], "".join(t for _, t in parts), labels))
    return out


def _kind(w: Written) -> str:
    if w.label_chunks:
        return "labels"
    if TOOLCALL_BEGIN in w.text:
        return "tools"
    if w.action_id.startswith("asr_assistant"):
        return "asr_assistant"
    if w.action_id.startswith("asr_user"):
        return "asr_user"
    return "think"


# ---- the script --------------------------------------------------------------------------------


def _norm(text: str) -> list[str]:
    """Own word normalization for matching transcripts: lower case, CJK characters one by one."""
    out: list[str] = []
    for tok in re.findall(rf"[{CJK_RANGES}]|[^\W_]+(?:['\u2019-][^\W_]+)*", text.lower()):
        out.append(tok.replace("\u2019", "'"))
    return out


@dataclass(frozen=True)
class Turn:
    """A stretch the user holds the floor: its clips and where its sound starts and ends."""

    ids: tuple[str, ...]
    start: int  # first voiced sample
    end: int  # end of the last voiced frame
    kind: str  # "turn" or "interrupt"


def _sound(voice: Voice, u: Utterance) -> tuple[int, int] | None:
    s = voice.first(u.audio_start_samples, u.audio_end_samples)
    e = voice.last_end(u.audio_start_samples, u.audio_end_samples)
    return None if s is None or e is None else (s, e)


def _user_turns(tl: Timeline, voice: Voice) -> list[Turn]:
    groups: dict[object, list[Utterance]] = {}
    for u in tl.utterances:
        if u.speaker != "user" or u.kind not in ("turn", "filler", "interrupt"):
            continue
        key = ("i", u.id) if u.kind == "interrupt" else ("t", u.turn_index)
        groups.setdefault(key, []).append(u)
    turns = []
    for key, us in groups.items():
        spans = [s for s in (_sound(voice, u) for u in us) if s is not None]
        if not spans:
            continue
        turns.append(
            Turn(
                tuple(u.id for u in us),
                min(s for s, _ in spans),
                max(e for _, e in spans),
                "interrupt" if key[0] == "i" else "turn",
            )
        )
    return sorted(turns, key=lambda t: t.end)


# ---- the checks --------------------------------------------------------------------------------


def check_sample(
    key: str,
    timeline: Timeline,
    chunks: list[ChunkRecord],
    user_audio: np.ndarray,
    assistant_audio: np.ndarray,
    *,
    action_channel: tuple[str, ...] | None = None,
    lag_chunks: int = 2,
) -> SemanticReport:
    """Score one sample (see the module docstring). ``action_channel``: what the sample says its
    channel carries (``SampleMeta.action_channel``); ``None`` = SPEC 11's table for its family."""
    rep = SemanticReport(key)
    sr = timeline.sample_rate
    chunk = chunk_samples(sr)
    sec = lambda s: int(round(s * sr))  # noqa: E731 - a local unit converter reads best inline
    user, asst = Voice(user_audio, sr), Voice(assistant_audio, sr)
    written = read_channel(chunks)
    channel = tuple(action_channel) if action_channel is not None else FAMILY_CHANNELS[timeline.family]
    turns = _user_turns(timeline, user)
    assistants = sorted(
        (u for u in timeline.utterances if u.speaker == "assistant"), key=lambda u: u.audio_start_samples
    )

    _check_channel(rep, timeline, written, channel)
    _check_turns(rep, timeline, turns, assistants, asst, sr, sec)
    if "labels" in channel:
        _check_labels(rep, timeline, written, turns, user, asst, chunk, sec)
    if "tools" in channel:
        _check_tools(rep, timeline, written, user, chunk, sec)
    for side in ("user", "assistant"):
        if f"asr_{side}" in channel:
            _check_asr(rep, timeline, written, user if side == "user" else asst, side, chunk, lag_chunks)
    _check_word_spans(rep, timeline, user, asst)
    return rep


def _check_channel(rep, tl: Timeline, written: list[Written], channel) -> None:
    """Only what the family's channel carries, and the family's own content is there."""
    stray = sorted({_kind(w) for w in written} - set(channel))
    if stray:
        w = next(w for w in written if _kind(w) in stray)
        rep.fail(
            "channel", f"family {tl.family} carries {stray} (its channel: {list(channel)})", w.first_chunk
        )
        return
    kinds = {_kind(w) for w in written}
    need = {
        "labels": True,  # every such session has at least one user turn, so one <response>
        "tools": tl.family == "toolcall",
        "think": tl.family == "think",
        "asr_user": any(u.words for u in tl.utterances if u.speaker == "user"),
        "asr_assistant": any(u.words for u in tl.utterances if u.speaker == "assistant"),
    }
    missing = [c for c in channel if need.get(c) and c not in kinds]
    if missing:
        rep.fail("channel", f"family {tl.family}: nothing on its channel for {missing}")
    else:
        rep.ok("channel")


def _check_turns(rep, tl, turns: list[Turn], assistants, asst: Voice, sr: int, sec) -> None:
    """Every user turn: the assistant is silent through it and answers no earlier than its end - 0.2 s."""
    chunk = chunk_samples(sr)
    onsets = [
        (o, a)
        for a in assistants
        if (o := asst.first(a.audio_start_samples, a.audio_end_samples)) is not None
    ]
    for t in turns:
        if t.kind == "turn":
            # silent through the turn: assistant sound inside it (a hesitation pause too) is early
            inside = asst.first(t.start, t.end - sec(RESPONSE_EARLY_S))
            if inside is not None:
                rep.fail(
                    "early_response",
                    f"assistant speaks at {inside / sr:.2f} s inside the user turn "
                    f"{t.start / sr:.2f}-{t.end / sr:.2f} s ({'+'.join(t.ids)})",
                    inside // chunk,
                )
                continue
        # the reply: the first assistant clip whose sound starts after the turn started (a barged-in
        # host started before its interruption)
        reply = next(((o, a) for o, a in onsets if o >= t.start), None)
        if reply is None:
            continue
        onset, a = reply
        gap = (onset - t.end) / sr
        rep.measure("response_gap_s", gap)
        if onset < t.end - sec(RESPONSE_EARLY_S):
            rep.fail("early_response", f"{a.id} starts {-gap:.2f} s before the user's end", onset // chunk)
        else:
            rep.ok("early_response")


def _label_list(written: list[Written], name: str) -> list[int]:
    return sorted(c for w in written for n, c in w.label_chunks if n == name)


def _check_labels(rep, tl, written, turns: list[Turn], user: Voice, asst: Voice, chunk: int, sec) -> None:
    sr = tl.sample_rate
    # <response>: one per user turn (barge-ins included), in order, never early
    responses = _label_list(written, "response")
    if len(responses) != len(turns):
        rep.fail("label_count", f"{len(responses)} <response> for {len(turns)} user turns")
    else:
        rep.ok("label_count")
        for t, c in zip(turns, responses, strict=True):
            end_chunk = (t.end - 1) // chunk
            if c < end_chunk:
                rep.fail(
                    "early_label",
                    f"<response> in chunk {c} while the user speaks until {t.end / sr:.2f} s (chunk {end_chunk})",
                    c,
                )
            elif c * chunk > t.end + sec(LABEL_LATE_S):
                rep.fail(
                    "early_label", f"<response> {c * chunk / sr - t.end / sr:.2f} s after the turn end", c
                )
            else:
                rep.ok("early_label")
    # <interrupt>: one per barge-in; the assistant stops after the label chunk, within the window
    barges = [t for t in turns if t.kind == "interrupt"]
    interrupts = _label_list(written, "interrupt")
    if len(interrupts) != len(barges):
        rep.fail("label_count", f"{len(interrupts)} <interrupt> for {len(barges)} barge-ins")
    else:
        rep.ok("label_count")
        for t, c in zip(sorted(barges, key=lambda b: b.start), interrupts, strict=True):
            if c * chunk + chunk <= t.start:
                rep.fail(
                    "early_label",
                    f"<interrupt> in chunk {c} before the barge-in starts at {t.start / sr:.2f} s",
                    c,
                )
                continue
            stop = asst.run_end(t.start)
            if stop is None:
                rep.fail(
                    "interrupt_stop",
                    f"the assistant is not speaking when the user barges in at {t.start / sr:.2f} s",
                    c,
                )
                continue
            t_int = c * chunk
            lo, hi = INTERRUPT_WINDOW_S
            rep.measure("interrupt_stop_after_label_s", (stop - t_int) / sr)
            if not (t_int + sec(lo) <= stop <= t_int + sec(hi)):
                rep.fail(
                    "interrupt_stop",
                    f"assistant stops at {stop / sr:.2f} s, outside [{lo}, {hi}] s of the label chunk",
                    c,
                )
            elif stop < t_int + chunk - user.hop:
                rep.fail(
                    "interrupt_stop",
                    f"assistant stops at {stop / sr:.2f} s, inside or before the label chunk {c}",
                    c,
                )
            elif (back := asst.first(stop + sec(MERGE_GAP_S), t.end - sec(RESPONSE_EARLY_S))) is not None:
                rep.fail(
                    "interrupt_stop",
                    f"assistant speaks again at {back / sr:.2f} s while the user goes on",
                    back // chunk,
                )
            else:
                rep.ok("interrupt_stop")
    # <backchannel>: one per feedback, after its end, the assistant speaking on
    feedback = []
    for u in tl.utterances:
        if u.speaker == "user" and u.kind == "backchannel":
            s = _sound(user, u)
            if s is not None:
                feedback.append(s)
    feedback.sort()
    bcs = _label_list(written, "backchannel")
    if len(bcs) != len(feedback):
        rep.fail("label_count", f"{len(bcs)} <backchannel> for {len(feedback)} feedback utterances")
        return
    rep.ok("label_count")
    for (s, e), c in zip(feedback, bcs, strict=True):
        lo, hi = BACKCHANNEL_WINDOW_S
        rep.measure("backchannel_label_after_end_s", (c * chunk - e) / sr)
        if c < (e - 1) // chunk:
            rep.fail(
                "early_label", f"<backchannel> in chunk {c} before the feedback ends at {e / sr:.2f} s", c
            )
        elif not (s + sec(lo) <= c * chunk + chunk and c * chunk <= e + sec(hi)):
            rep.fail(
                "backchannel",
                f"<backchannel> at {c * chunk / sr:.2f} s outside [{lo}, {hi}] s of the feedback",
                c,
            )
        elif asst.share(s, e) < 0.5 or (asst.run_end(s) or 0) <= e:
            rep.fail(
                "backchannel", f"the assistant does not keep speaking over the feedback at {s / sr:.2f} s", c
            )
        else:
            rep.ok("backchannel")


def _word_sound_end(voice: Voice, words, i: int, clip_end: int) -> int:
    nxt = words[i + 1].start_samples if i + 1 < len(words) else clip_end
    end = voice.last_end(words[i].start_samples, max(nxt, words[i].end_samples))
    return end if end is not None else words[i].end_samples


def _anchor_end(voice: Voice, utt: Utterance, anchor: str) -> int | None:
    units = [(n, i) for i, w in enumerate(utt.words) for n in _norm(w.text)]
    needle = _norm(anchor)
    names = [n for n, _ in units]
    for k in range(len(names) - len(needle) + 1):
        if needle and names[k : k + len(needle)] == needle:
            wi = units[k + len(needle) - 1][1]
            return _word_sound_end(voice, utt.words, wi, utt.audio_end_samples)
    return None


def _check_tools(rep, tl: Timeline, written, user: Voice, chunk: int, sec) -> None:
    sr = tl.sample_rate
    first = {w.action_id: w.first_chunk for w in written}
    by_id = {u.id: u for u in tl.utterances}
    for a in tl.actions:
        if not a.is_tool_call:
            continue
        if a.id not in first:
            rep.fail("tool_timing", f"tool call {a.id} ({a.name}) is not on the channel")
            continue
        utt = by_id.get(a.anchor_utterance_id or "")
        end = _anchor_end(user, utt, a.anchor or "") if utt is not None else None
        if end is None:
            rep.fail("tool_timing", f"anchor {a.anchor!r} of {a.id} is not in the user's words")
            continue
        anchor_chunk, f = (end - 1) // chunk, first[a.id]
        rep.measure("tool_first_token_after_anchor_s", (f - anchor_chunk) * chunk / sr)
        if f < anchor_chunk:
            rep.fail(
                "tool_timing",
                f"{a.name} starts in chunk {f}, before its anchor ends (chunk {anchor_chunk})",
                f,
            )
        elif (f - anchor_chunk) * chunk > sec(TOOL_LATE_S):
            rep.fail(
                "tool_timing", f"{a.name} starts {(f - anchor_chunk) * chunk / sr:.2f} s after its anchor", f
            )
        else:
            rep.ok("tool_timing")


def _check_asr(rep, tl: Timeline, written, voice: Voice, side: str, chunk: int, lag: int) -> None:
    # the transcript as written: (normalized unit, chunk) in channel order
    stream: list[tuple[str, int]] = []
    pieces = sorted(
        ((c, w.action_id) for w in written if _kind(w) == f"asr_{side}" for c in [w.first_chunk]),
    )
    texts = {w.action_id: w for w in written}
    for c, aid in pieces:
        for n in _norm(texts[aid].text):
            stream.append((n, c))
    expected: list[tuple[str, int, int]] = []  # (unit, expected chunk, near a chunk boundary)
    for u in sorted(
        (u for u in tl.utterances if u.speaker == side), key=lambda u: (u.audio_start_samples, u.id)
    ):
        for i, w in enumerate(u.words):
            if side == "user":
                t = _word_sound_end(voice, u.words, i, u.audio_end_samples) - 1
            else:
                if u.cut_samples is not None and w.start_samples >= u.cut_samples:
                    continue
                t = w.start_samples
            near = min(t % chunk, chunk - t % chunk) <= 2 * voice.hop
            for n in _norm(w.text):
                expected.append((n, t // chunk + lag, near))
    # user words are transcribed in the order they are heard (end time), assistant words by start
    expected.sort(key=lambda x: x[1])
    got = sorted(stream, key=lambda x: x[1])
    if [n for n, _, _ in sorted(expected)] != [n for n, _ in sorted(got)]:
        rep.fail("asr_timing", f"{side} transcript does not match the {side}'s words")
        return
    pool: dict[str, list[int]] = {}
    for n, c in got:
        pool.setdefault(n, []).append(c)
    for n, e, near in expected:
        cands = pool[n]
        c = min(cands, key=lambda x: (x < e - (1 if near else 0), abs(x - e)))
        cands.remove(c)
        if c < e - (1 if near else 0) or c > e + ASR_SPILL_CHUNKS:
            rep.fail(
                "asr_timing", f"{side} word {n!r} written in chunk {c}, its audio puts it in chunk {e}", c
            )
            return
    rep.ok("asr_timing")


def _check_word_spans(rep, tl: Timeline, user: Voice, asst: Voice) -> None:
    sr = tl.sample_rate
    chunk = chunk_samples(sr)
    for u in tl.utterances:
        voice = user if u.speaker == "user" else asst
        if not u.words:
            continue
        sl = voice.frames(u.audio_start_samples, u.audio_end_samples)
        energy = voice.energy[sl] * voice.voiced[sl]
        total = float(energy.sum())
        inside = np.zeros(energy.shape[0], dtype=bool)
        silent_at: list[int] = []
        judged = 0
        for w in u.words:
            wsl = voice.frames(w.start_samples, w.end_samples)
            inside[max(0, wsl.start - sl.start) : max(0, wsl.stop - sl.start)] = True
            if w.end_samples - w.start_samples >= SPAN_SHORT_S * sr:
                judged += 1
                if voice.share(w.start_samples, w.end_samples) < SPAN_VOICED_MIN:
                    silent_at.append(w.start_samples)
        cover = float(energy[inside[: energy.shape[0]]].sum()) / total if total > 0 else 1.0
        rep.measure("speech_in_word_spans", cover)
        if cover < COVERAGE_MIN:
            # the chunk holding the loudest sound outside every span
            outside = np.where(inside[: energy.shape[0]], 0.0, energy)
            where = (sl.start + int(np.argmax(outside))) * voice.hop
            rep.fail(
                "word_spans",
                f"{u.id}: only {cover:.0%} of its speech energy is inside its word spans",
                where // chunk,
            )
        elif judged and len(silent_at) / judged > SILENT_SPANS_MAX:
            rep.fail(
                "word_spans",
                f"{u.id}: {len(silent_at)} of {judged} word spans are mostly silence",
                silent_at[0] // chunk,
            )
        else:
            rep.ok("word_spans")
