"""Matplotlib figures for the QA report (PNG bytes; the Agg backend, no display needed).

* :func:`timeline_pngs`: one sample on one time axis, cut into even segments of about
  ``segment_s``: user and assistant waveforms with their words, the TA4 anchor row (``T`` per chunk),
  the action channel row (each chunk's pieces, coloured per action), the 160 ms chunk grid, and a
  dashed line at every label / tool call / think trigger. Returns PNGs plus, per PNG, the axes'
  horizontal extent in figure fractions so the page can draw a playback cursor.
* :func:`histogram_png`, :func:`bars_png`: dataset-page charts.

Input: a :class:`DecodedSample` / histogram dicts (``edges``, ``counts``). No reject codes.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on workers and CI machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

# Chinese words and phrases must not draw as boxes: fall back to a CJK font when one is installed
# (the Makefile installs Debian's fonts-wqy-microhei); DejaVu stays first for Latin text.
# Register the file directly: matplotlib's font cache may predate the font's installation.
_CJK_FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
# The CJK font has no bold face; matplotlib substitutes the regular one, which is fine, silently.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
if os.path.exists(_CJK_FONT_FILE):
    font_manager.fontManager.addfont(_CJK_FONT_FILE)
plt.rcParams["font.family"] = ["DejaVu Sans", "WenQuanYi Micro Hei", "sans-serif"]  # per-glyph fallback

from duplexloom.schemas.action import ActionObject  # noqa: E402
from duplexloom.schemas.tokens import TTS_PAD, VAD_SILENCE  # noqa: E402
from duplexloom.schemas.units import chunk_samples  # noqa: E402
from duplexloom.timeline.sample_codec import DecodedSample  # noqa: E402

PIECE_FONT_PT = 6
LABEL_COLORS = {"response": "#2e9d49", "interrupt": "#d62728", "backchannel": "#ff8c00"}
TOOL_COLOR, THINK_COLOR, ASR_COLOR = "#7b3fbf", "#138a8a", "#8c8c8c"
USER_COLOR, ASSISTANT_COLOR = "#1f6fb4", "#c0392b"
_TOOL_SHADES = ("#7b3fbf", "#a05cd6", "#5e2a99", "#b67be6")


def action_color(a_id: str, name: str | None, tool_index: int = 0) -> str:
    """One colour per action kind (tool calls cycle through shades so neighbours differ)."""
    if name in LABEL_COLORS:
        return LABEL_COLORS[name]
    if name == "think":
        return THINK_COLOR
    if name == "asr" or name is None or a_id.startswith("asr_"):
        return ASR_COLOR
    return _TOOL_SHADES[tool_index % len(_TOOL_SHADES)]


def action_colors(s: DecodedSample) -> dict[str, str]:
    """Action id -> colour for every action of the sample, derived ASR actions included."""
    out: dict[str, str] = {}
    tools = 0
    for a in s.meta.timeline.actions:
        out[a.id] = action_color(a.id, a.name, tools)
        tools += int(a.is_tool_call)
    for c in s.chunks:
        for p in c.pieces:
            out.setdefault(p.action_id, ASR_COLOR)
    return out


@dataclass(frozen=True)
class TimelinePlot:
    png: bytes
    t0_s: float  # time at the left edge of the axes
    t1_s: float  # time at the right edge
    x0_frac: float  # axes left edge as a fraction of the image width
    x1_frac: float
    piece_labels: tuple[str, ...] = ()  # the action-channel texts as drawn (for checks and alt text)


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    plt.close(fig)
    return buf.getvalue()


_LABEL_TOKEN_RE = re.compile(r"<[a-z_]+>$")  # a control label token ending a piece (<response>)


def _text_em(text: str) -> float:
    """Rough width in ems: full-width (CJK) characters 1, everything else 0.6."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.6 for ch in text)


def piece_label(text: str, budget_em: float) -> str:
    """An action piece's text for the plot, fitted into ``budget_em``: tool-call markers
    abbreviated; when it does not fit, the head is cut with "…" but a control label token that
    ends the piece is kept whole (so "接收到完整内容<response>" never shows as "…<respon")."""
    label = text.replace("<|toolcall_begin|>", "⟨tc⟩").replace("<|toolcall_end|>", "⟨/tc⟩").strip()
    if _text_em(label) <= budget_em:
        return label
    m = _LABEL_TOKEN_RE.search(label)
    tail = m.group(0) if m else ""
    head = label[: m.start()] if m else label
    room = budget_em - _text_em(tail) - 1.0  # the ellipsis
    while head and _text_em(head) > room:
        head = head[:-1]
    return f"{head}…{tail}" if head or not tail else tail


def _trigger_label(a: ActionObject) -> str:
    return a.name if not a.is_tool_call else f"{a.name}()"


def _draw_words(ax: plt.Axes, s: DecodedSample, speaker: str, t0: float, t1: float, color: str) -> None:
    sr = s.meta.timeline.sample_rate
    i = 0
    for u in s.meta.timeline.utterances:
        if u.speaker != speaker:
            continue
        for w in u.words:
            ws, we = w.start_samples / sr, w.end_samples / sr
            if we < t0 or ws > t1:
                continue
            ax.axvspan(ws, we, ymin=0.04, ymax=0.16, color=color, alpha=0.35 if i % 2 else 0.2, lw=0)
            ax.text(ws, -0.93 + 0.22 * (i % 2), w.text, fontsize=7.5, color="#222", clip_on=True, va="bottom")
            i += 1
        if u.cut_samples is not None and t0 <= u.cut_samples / sr <= t1:
            ax.axvline(u.cut_samples / sr, color=color, lw=1.6, ls=(0, (1, 1)))
            ax.text(u.cut_samples / sr, 0.92, " cut", fontsize=7, color=color, va="top", clip_on=True)


def timeline_pngs(s: DecodedSample, segment_s: float = 14.0, width_in: float = 15.0) -> list[TimelinePlot]:
    """The sample's timeline figure(s); see the module docstring."""
    tl = s.meta.timeline
    sr = tl.sample_rate
    clen = chunk_samples(sr, s.meta.chunk_ms)
    chunk_s = clen / sr
    total_s = max(len(s.chunks) * chunk_s, len(s.user_audio) / sr, 1e-3)
    # Segments hold whole chunks so the grid lines up from one image to the next.
    # A session up to 1.35 x segment_s stays one image; longer ones split evenly (no near-empty tail).
    n_seg = max(1, math.ceil(total_s / (segment_s * 1.35)))
    per_seg = max(1, math.ceil(max(len(s.chunks), 1) / n_seg))
    colors = action_colors(s)
    plots = []
    for first in range(0, max(len(s.chunks), 1), per_seg):
        t0 = first * chunk_s
        t1 = min(t0 + per_seg * chunk_s, total_s)
        t1_axis = t0 + per_seg * chunk_s  # every segment keeps the same scale
        fig, axes = plt.subplots(
            4,
            1,
            figsize=(width_in, 6.6),
            dpi=100,
            sharex=True,
            gridspec_kw={"height_ratios": [3, 3, 1.1, 2.8], "hspace": 0.08},
        )
        fig.subplots_adjust(left=0.075, right=0.99, top=0.9, bottom=0.08)
        ax_u, ax_a, ax_t, ax_act = axes
        for ax, audio, name, color in (
            (ax_u, s.user_audio, "user", USER_COLOR),
            (ax_a, s.assistant_audio, "assistant", ASSISTANT_COLOR),
        ):
            a0, a1 = int(t0 * sr), int(t1 * sr)
            seg = np.asarray(audio[a0:a1], dtype=np.float32)
            if seg.size:
                # Min/max envelope per pixel column: exact peaks at any zoom, small PNGs.
                cols = max(1, min(seg.size, 2000))
                edges = np.linspace(0, seg.size, cols + 1).astype(int)
                mins = np.minimum.reduceat(seg, edges[:-1])
                maxs = np.maximum.reduceat(seg, edges[:-1])
                ts = t0 + edges[:-1] / sr
                peak = max(float(np.max(np.abs(seg))), 1e-3)
                ax.fill_between(ts, mins / peak, maxs / peak, color=color, lw=0.3, alpha=0.85, step="post")
            ax.set_ylim(-1, 1)
            ax.set_yticks([])
            ax.set_ylabel(
                name, rotation=0, ha="right", va="center", fontsize=9, color=color, fontweight="bold"
            )
            _draw_words(ax, s, name, t0, t1, color)
        # T anchor row: one cell per chunk.
        ax_t.set_ylim(0, 1)
        ax_t.set_yticks([])
        ax_t.set_ylabel("T", rotation=0, ha="right", va="center", fontsize=9, fontweight="bold")
        ax_act.set_ylim(0, 1)
        ax_act.set_yticks([])
        drawn: list[str] = []
        act_box = ax_act.get_position()
        act_h_in = act_box.height * fig.get_figheight()
        chunk_w_in = act_box.width * fig.get_figwidth() * chunk_s / (t1_axis - t0)
        ax_act.set_ylabel("action", rotation=0, ha="right", va="center", fontsize=9, fontweight="bold")
        for c in s.chunks[first : first + per_seg]:
            x = c.chunk * chunk_s
            if c.anchor == TTS_PAD:
                ax_t.add_patch(Rectangle((x, 0.35), chunk_s, 0.3, color="#f3c1b8", lw=0))
            elif c.anchor != VAD_SILENCE:
                ax_t.add_patch(Rectangle((x, 0.05), chunk_s, 0.9, color="#fbe3de", lw=0))
                ax_t.text(
                    x + chunk_s / 2,
                    0.5,
                    c.anchor.strip(),
                    fontsize=7,
                    ha="center",
                    va="center",
                    rotation=90,
                    clip_on=True,
                )
            n = len(c.pieces)
            for k, p in enumerate(c.pieces):
                y0 = 1 - (k + 1) / n
                ax_act.add_patch(
                    Rectangle(
                        (x, y0 + 0.02),
                        chunk_s,
                        1 / n - 0.04,
                        color=colors.get(p.action_id, ASR_COLOR),
                        alpha=0.28,
                        lw=0,
                    )
                )
                # the room along the text: the row's height when vertical, the chunk's width else
                room_in = act_h_in / n if n == 1 else chunk_w_in
                drawn.append(piece_label(p.text, 0.92 * room_in * 72 / PIECE_FONT_PT))
                ax_act.text(
                    x + chunk_s / 2,
                    y0 + 0.5 / n,
                    drawn[-1],
                    fontsize=PIECE_FONT_PT,
                    ha="center",
                    va="center",
                    rotation=90 if n == 1 else 0,
                    clip_on=True,
                )
        # Chunk grid: a line per 160 ms chunk, stronger each second.
        for ax in axes:
            for k in range(first, first + per_seg + 1):
                ax.axvline(k * chunk_s, color="#000", lw=0.35, alpha=0.12, zorder=0)
            ax.set_xlim(t0, t1_axis)
            ax.tick_params(labelsize=8)
        # Trigger lines for labels, tool calls and thoughts (ASR triggers would only clutter).
        placed: list[float] = []  # label x positions, to stack labels that would overlap
        for a in sorted(tl.actions, key=lambda a: a.offset_samples):
            if a.name == "asr":
                continue
            t = a.offset_samples / sr
            if not t0 <= t <= t1:
                continue
            col = colors.get(a.id, TOOL_COLOR)
            for ax in axes:
                ax.axvline(t, color=col, lw=1.3, ls="--", alpha=0.9)
            level = sum(1 for x in placed if abs(x - t) < 0.05 * (t1_axis - t0))
            placed.append(t)
            ax_u.text(
                t,
                1.02 + 0.11 * level,
                _trigger_label(a),
                transform=ax_u.get_xaxis_transform(),
                fontsize=7.5,
                color=col,
                ha="center",
                va="bottom",
                fontweight="bold",
                clip_on=False,
            )
        ax_act.set_xlabel("seconds (grid: 160 ms chunks)", fontsize=8)
        major = np.arange(np.ceil(t0), t1_axis + 1e-9, 1.0)
        ax_act.set_xticks(major)
        pos = ax_u.get_position()
        plots.append(TimelinePlot(_png(fig), t0, t1_axis, float(pos.x0), float(pos.x1), tuple(drawn)))
    return plots


def histogram_png(title: str, hist: dict[str, Any], color: str = "#1f6fb4") -> bytes | None:
    """A bar chart of one ``timing.histograms`` result (``None`` when it has no values)."""
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return None
    fig, ax = plt.subplots(figsize=(4.2, 2.4), dpi=100)
    widths = np.diff(edges)
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=color, alpha=0.85, edgecolor="white", lw=0.4)
    sub = f"n={hist.get('n', sum(counts))}"
    if "p50" in hist:
        sub += f"  p50={hist['p50']:.2f}  p90={hist['p90']:.2f}"
    if isinstance(hist.get("std"), float):
        sub += f"  std={hist['std']:.2f}"
    if hist.get("reference"):  # the self-check's measured timings carry SPEC's reference value
        sub += f"\nreference: {hist['reference']}"
    ax.set_title(f"{title}\n{sub}", fontsize=8.5 if "reference" not in hist else 7.5)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def bars_png(title: str, counts: dict[str, float], color: str = "#7b3fbf") -> bytes | None:
    """Horizontal bars, largest first (``None`` when empty)."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:25]
    fig, ax = plt.subplots(figsize=(5.2, 0.3 * len(items) + 0.9), dpi=100)
    ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color=color, alpha=0.85)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7.5)
    fig.tight_layout()
    return _png(fig)
