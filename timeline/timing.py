"""Timing validators (acceptance windows of the published duplex benchmark) and timing statistics.

Input: a :class:`~duplexloom.schemas.Timeline` (session clock, integer samples), the
:class:`TimelineConfig`, and optionally the assistant track.
Output: :func:`check_timing` -> list of :class:`Violation` (empty when the session is good);
:func:`timing_stats` -> per-statistic lists of seconds; :func:`histograms` /
:func:`family_histograms` -> JSON-ready histograms for the run summary and the QA report.

Rules (windows in seconds, converted to samples at the timeline's rate):

- ``assistant_not_silent``: the assistant track is silent in every chunk whose anchor is
  ``<vad_silence>`` (no assistant utterance overlaps the chunk);
- ``early_response`` (normal / pause): no assistant onset before user end - 0.2 s, counted from the
  turn's first piece, so an assistant speaking into a hesitation pause is caught;
- ``interrupt_window``: the assistant stop is in [anchor - 1 s, anchor + 2 s];
  ``interrupt_stop_delay``: it stops
  after the ``<interrupt>`` label's chunk ends and within ``stop_delay_s.upper()`` of its start;
  ``interrupt_no_stop``: nothing was cut;
- ``backchannel_window``: label in [feedback start - 0.2 s, feedback end + 2 s];
  ``backchannel_not_over_speech``: the assistant was speaking at the feedback onset and kept on;
- ``tool_early``: a tool call triggers no earlier than its anchor by more than 1 s;
- ``anchor_not_aligned`` when an action's anchor cannot be found again.
No reject codes: :func:`duplexloom.timeline.merge.build_session` turns violations into a
``timing_violation`` reject.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from duplexloom.schemas import Record, RejectError, Timeline, Utterance
from duplexloom.schemas.units import chunk_samples

from . import augment as aug
from .config import TimelineConfig

RESPONSE_EARLY_S = 0.2
INTERRUPT_WINDOW_S = (-1.0, 2.0)
BACKCHANNEL_WINDOW_S = (-0.2, 2.0)
TOOL_EARLY_S = 1.0
SILENCE_LEVEL = 1e-4  # |sample| above this in a <vad_silence> chunk is speech leaking

STATS = (
    "response_gap_s",
    "stop_delay_s",
    "interrupt_stop_after_anchor_s",
    "backchannel_label_delay_s",
    "tool_trigger_delay_s",
)
DEFAULT_BINS: dict[str, list[float]] = {
    "response_gap_s": [round(0.08 * i, 2) for i in range(0, 26)],
    "stop_delay_s": [round(0.08 * i, 2) for i in range(0, 26)],
    "interrupt_stop_after_anchor_s": [round(-1.0 + 0.2 * i, 1) for i in range(0, 16)],
    "backchannel_label_delay_s": [round(0.1 * i, 1) for i in range(0, 26)],
    "tool_trigger_delay_s": [round(-1.0 + 0.1 * i, 1) for i in range(0, 31)],
}


class Violation(Record):
    code: str
    detail: str
    target: str | None = None
    t_samples: int | None = None

    def describe(self) -> str:
        return f"{self.code}[{self.target}]: {self.detail}"


def _by_id(tl: Timeline) -> dict[str, Utterance]:
    return {u.id: u for u in tl.utterances}


def _assistant(tl: Timeline) -> list[Utterance]:
    return [u for u in tl.utterances if u.speaker == "assistant"]


def _turn_start(tl: Timeline, user_utt: Utterance) -> int:
    """First sample of the user turn the utterance belongs to (its first pause piece)."""
    pieces = [
        aug.speech_start(u)
        for u in tl.utterances
        if u.speaker == "user" and u.kind in ("turn", "filler") and u.turn_index == user_utt.turn_index
    ]
    return min(pieces, default=aug.speech_start(user_utt))


def _host_at(tl: Timeline, t: int) -> Utterance | None:
    """The assistant utterance whose audio holds sample ``t``."""
    for a in _assistant(tl):
        if aug.speech_start(a) <= t < aug.speech_end(a):
            return a
    return None


def _cut_host(tl: Timeline, onset: int) -> Utterance | None:
    for a in _assistant(tl):
        if a.cut_samples is not None and aug.speech_start(a) <= onset <= a.cut_samples:
            return a
    return None


def check_timing(
    timeline: Timeline, config: TimelineConfig, assistant_audio: np.ndarray | None = None
) -> list[Violation]:
    """Every way the session breaks the acceptance windows (see module docstring)."""
    sr = timeline.sample_rate
    s = lambda sec: int(round(sec * sr))  # noqa: E731 - a local unit converter reads best inline
    out: list[Violation] = []
    utts = _by_id(timeline)

    if assistant_audio is not None:
        chunk = config.sample_rate * config.chunk_ms // 1000
        speaking = np.zeros(-(-assistant_audio.shape[0] // chunk), dtype=bool)
        for a in _assistant(timeline):
            if a.audio_end_samples > a.audio_start_samples:
                speaking[a.audio_start_samples // chunk : -(-a.audio_end_samples // chunk)] = True
        n_whole = assistant_audio.shape[0] // chunk * chunk
        whole = assistant_audio[:n_whole].reshape(-1, chunk)
        # max |x| per chunk as max(max x, -min x): two reductions, no |x| copy of the track
        peaks = np.zeros(speaking.shape[0], np.float32)
        if n_whole:
            peaks[: whole.shape[0]] = np.maximum(whole.max(axis=1), -whole.min(axis=1))
        if n_whole < assistant_audio.shape[0]:  # a partial last chunk
            peaks[-1] = np.abs(assistant_audio[n_whole:]).max()
        for c in np.flatnonzero(~speaking & (peaks > SILENCE_LEVEL)):
            out.append(
                Violation(
                    code="assistant_not_silent",
                    detail=f"chunk {c} peak {peaks[c]:.4f}",
                    t_samples=int(c * chunk),
                )
            )

    for act in timeline.actions:
        u = utts.get(act.anchor_utterance_id or "")
        if act.name == "response":
            if u is None:
                continue
            start = _turn_start(timeline, u)
            for a in _assistant(timeline):
                if start <= aug.speech_start(a) < act.offset_samples - s(RESPONSE_EARLY_S):
                    out.append(
                        Violation(
                            code="early_response",
                            detail=f"{a.id} starts {(act.offset_samples - a.audio_start_samples) / sr:.2f} s before the user end",
                            target=a.id,
                            t_samples=a.audio_start_samples,
                        )
                    )
        elif act.name == "interrupt":
            if u is None:
                out.append(Violation(code="interrupt_no_stop", detail="no barge-in utterance", target=act.id))
                continue
            onset = aug.speech_start(u)
            host = _cut_host(timeline, onset)
            if host is None or host.cut_samples is None:
                out.append(
                    Violation(
                        code="interrupt_no_stop", detail=f"no assistant stops after {u.id}", target=act.id
                    )
                )
                continue
            stop = host.cut_samples
            lo, hi = INTERRUPT_WINDOW_S
            if not (act.offset_samples + s(lo) <= stop <= act.offset_samples + s(hi)):
                out.append(
                    Violation(
                        code="interrupt_window",
                        detail=f"stop {stop / sr:.2f} s outside [{lo}, {hi}] s of anchor {act.offset_samples / sr:.2f} s",
                        target=act.id,
                    )
                )
            chunk = config.chunk_samples
            label_chunk_start = act.offset_samples // chunk * chunk
            if (
                not (label_chunk_start + chunk <= stop <= label_chunk_start + s(config.stop_delay_s.upper()))
                or host.audio_end_samples > stop
            ):
                out.append(
                    Violation(
                        code="interrupt_stop_delay",
                        detail=f"stop {(stop - label_chunk_start) / sr:.3f} s after the label chunk starts, "
                        f"configured {config.stop_delay_s.describe()} (and never inside the label chunk)",
                        target=act.id,
                    )
                )
        elif act.name == "backchannel":
            if u is None:
                continue
            lo, hi = BACKCHANNEL_WINDOW_S
            if not (aug.speech_start(u) + s(lo) <= act.offset_samples <= aug.speech_end(u) + s(hi)):
                out.append(
                    Violation(
                        code="backchannel_window",
                        detail=f"label at {act.offset_samples / sr:.2f} s",
                        target=act.id,
                    )
                )
            host = _host_at(timeline, aug.speech_start(u))
            if host is None or host.cut_samples is not None:
                out.append(
                    Violation(
                        code="backchannel_not_over_speech",
                        detail=f"{u.id} is not spoken over assistant speech",
                        target=act.id,
                    )
                )
        elif act.is_tool_call and act.anchor:
            if u is None:
                out.append(
                    Violation(code="anchor_not_aligned", detail="anchor utterance missing", target=act.id)
                )
                continue
            try:
                anchor_t = aug.anchor_end_samples(u, act.anchor)
            except RejectError as e:
                out.append(Violation(code="anchor_not_aligned", detail=e.detail, target=act.id))
                continue
            if act.offset_samples < anchor_t - s(TOOL_EARLY_S):
                out.append(
                    Violation(
                        code="tool_early",
                        detail=f"{(anchor_t - act.offset_samples) / sr:.2f} s before anchor",
                        target=act.id,
                    )
                )
    return out


def timing_stats(timeline: Timeline) -> dict[str, list[float]]:
    """Seconds per statistic (see ``STATS``) measured on one session."""
    sr = timeline.sample_rate
    utts = _by_id(timeline)
    out: dict[str, list[float]] = {k: [] for k in STATS}
    asst = sorted(_assistant(timeline), key=aug.speech_start)
    for act in timeline.actions:
        u = utts.get(act.anchor_utterance_id or "")
        if u is None:
            continue
        if act.name == "response":
            nxt = [a for a in asst if aug.speech_start(a) >= _turn_start(timeline, u)]
            if nxt:
                out["response_gap_s"].append((aug.speech_start(nxt[0]) - act.offset_samples) / sr)
        elif act.name == "interrupt":
            onset = aug.speech_start(u)
            host = _cut_host(timeline, onset)
            if host is not None and host.cut_samples is not None:
                chunk = chunk_samples(sr)
                out["stop_delay_s"].append((host.cut_samples - act.offset_samples // chunk * chunk) / sr)
                out["interrupt_stop_after_anchor_s"].append((host.cut_samples - act.offset_samples) / sr)
        elif act.name == "backchannel":
            out["backchannel_label_delay_s"].append((act.offset_samples - aug.speech_start(u)) / sr)
        elif act.is_tool_call and act.anchor:
            try:
                out["tool_trigger_delay_s"].append(
                    (act.offset_samples - aug.anchor_end_samples(u, act.anchor)) / sr
                )
            except RejectError:
                continue
    return out


def histograms(values: Sequence[float], bins: int | Sequence[float] = 20) -> dict[str, Any]:
    """A JSON-ready histogram: ``edges``, ``counts``, plus n / mean / p50 / p90 / min / max."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "edges": list(bins) if not isinstance(bins, int) else [], "counts": []}
    counts, edges = np.histogram(
        v, bins=bins if isinstance(bins, int) else np.asarray(bins, dtype=np.float64)
    )
    return {
        "n": int(v.size),
        "edges": [round(float(e), 6) for e in edges],
        "counts": [int(c) for c in counts],
        # values outside the edges are not in counts; report them so nothing disappears
        "below": int(np.sum(v < edges[0])),
        "above": int(np.sum(v > edges[-1])),
        "mean": round(float(v.mean()), 6),
        "p50": round(float(np.percentile(v, 50)), 6),
        "p90": round(float(np.percentile(v, 90)), 6),
        "min": round(float(v.min()), 6),
        "max": round(float(v.max()), 6),
    }


def merge_stats(into: dict[str, list[float]], more: dict[str, list[float]]) -> dict[str, list[float]]:
    """Concatenate two ``timing_stats`` results (for combiners)."""
    return {k: list(into.get(k, [])) + list(more.get(k, [])) for k in sorted(set(into) | set(more))}


def family_histograms(timelines: Iterable[Timeline]) -> dict[str, dict[str, dict[str, Any]]]:
    """family -> statistic -> histogram over the given sessions (DEFAULT_BINS edges)."""
    per: dict[str, dict[str, list[float]]] = {}
    for tl in timelines:
        per[tl.family] = merge_stats(per.get(tl.family, {}), timing_stats(tl))
    return {
        fam: {k: histograms(vals, DEFAULT_BINS.get(k, 20)) for k, vals in sorted(stats.items())}
        for fam, stats in sorted(per.items())
    }
