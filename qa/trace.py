"""Chunk traces for reviewers (SPEC section 15), plain, coloured for a terminal, or as HTML rows.

Input: a :class:`DecodedSample` (its ``chunks`` and stored ``trace``). Output: text / HTML strings.
The line text is the core's ``trace_line``; what this module adds is where the action channel
starts, so it can be highlighted, and per-action colours for the pieces. No reject codes.
"""

from __future__ import annotations

import html
import re

from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.tokens import (
    ACTION_END,
    ASSISTANT_AUDIO_END,
    CONTROL_LABELS,
    TOOLCALL_BEGIN,
    TOOLCALL_END,
)
from duplexloom.timeline.serialize import trace_line

# ANSI: dim for the audio channels, bold yellow action text, cyan markers, magenta labels.
_DIM, _ACT, _MARK, _LABEL, _RESET = "\x1b[2m", "\x1b[1;33m", "\x1b[36m", "\x1b[1;35m", "\x1b[0m"
_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in (TOOLCALL_BEGIN, TOOLCALL_END, *CONTROL_LABELS)))


def split_line(line: str) -> tuple[str, str]:
    """(audio channels part ending with ``<|assistant_audio_end|>``, action channel part)."""
    head, sep, tail = line.partition(ASSISTANT_AUDIO_END)
    return (head + sep, tail) if sep else (line, "")


def color_line(line: str) -> str:
    """One trace line with the action channel highlighted (ANSI)."""
    head, tail = split_line(line)
    body = tail.removesuffix(ACTION_END)
    end = tail[len(body) :]

    def mark(m: re.Match[str]) -> str:
        tok = m.group(0)
        return f"{_LABEL if tok in CONTROL_LABELS else _MARK}{tok}{_ACT}"

    return f"{_DIM}{head}{_RESET}{_ACT}{_SPECIAL_RE.sub(mark, body)}{_RESET}{_MARK}{end}{_RESET}"


def terminal_trace(
    chunks: list[ChunkRecord], trace: str, *, chunk_ms: int = 160, color: bool = False, times: bool = True
) -> str:
    """The stored trace, one line per chunk, optionally prefixed with chunk index and start time."""
    lines = trace.splitlines()
    out = []
    width = len(str(max(len(lines) - 1, 0)))
    for i, line in enumerate(lines):
        prefix = f"{i:>{width}} {i * chunk_ms / 1000:7.2f}s  " if times else ""
        out.append(prefix + (color_line(line) if color else line))
    return "\n".join(out) + ("\n" if out else "")


def _html_action(c: ChunkRecord, colors: dict[str, str]) -> str:
    parts = []
    for p in c.pieces:
        text = html.escape(p.text)
        for tok in (TOOLCALL_BEGIN, TOOLCALL_END, *CONTROL_LABELS):
            cls = "lbl" if tok in CONTROL_LABELS else "mk"
            text = text.replace(html.escape(tok), f'<span class="{cls}">{html.escape(tok)}</span>')
        color = colors.get(p.action_id, "#555")
        parts.append(
            f'<span class="piece" style="border-color:{color};background:{color}22" '
            f'title="{html.escape(p.action_id)} ({p.tokens} tokens{", closes" if p.closes else ""})">{text}</span>'
        )
    return "".join(parts)


def html_rows(chunks: list[ChunkRecord], colors: dict[str, str], *, chunk_ms: int, budget: int) -> str:
    """``<tr>`` rows: chunk, start time, the highlighted action channel, its token count against the
    budget, then the SPEC 15 audio part (action first: it is what a reviewer reads). ``data-t`` lets the page seek the mix player."""
    rows = []
    for c in chunks:
        head, _ = split_line(trace_line(c))
        full = c.action_tokens >= budget
        rows.append(
            f'<tr data-t="{c.chunk * chunk_ms / 1000:.3f}" id="c{c.chunk}">'
            f'<td class="n">{c.chunk}</td><td class="n">{c.chunk * chunk_ms / 1000:.2f}</td>'
            f'<td class="act">{_html_action(c, colors)}<span class="mk">{html.escape(ACTION_END)}</span></td>'
            f'<td class="n{" full" if full else ""}">{c.action_tokens}/{budget}</td>'
            f'<td class="au">{html.escape(head)}</td></tr>'
        )
    return "\n".join(rows)
