"""Token vocabulary of the TA4 + action-FIFO layout (SPEC section 3) and the marker guard.

Every string here counts as exactly one token of whatever tokenizer a run declares. Untrusted text
(seeds, LLM output) must never contain any of them; :func:`find_markers` finds them so callers can
reject the record.
"""

from __future__ import annotations

import re

USER_AUDIO_BEGIN = "<|user_audio_begin|>"
USER_AUDIO_END = "<|user_audio_end|>"
ASSISTANT_AUDIO_BEGIN = "<|assistant_audio_begin|>"
ASSISTANT_AUDIO_END = "<|assistant_audio_end|>"
ACTION_END = "<|action_end|>"
TOOLCALL_BEGIN = "<|toolcall_begin|>"
TOOLCALL_END = "<|toolcall_end|>"

VAD_SILENCE = "<vad_silence>"
TTS_PAD = "<tts_pad>"

LABEL_RESPONSE = "<response>"
LABEL_INTERRUPT = "<interrupt>"
LABEL_BACKCHANNEL = "<backchannel>"

CHANNEL_MARKERS = (
    USER_AUDIO_BEGIN,
    USER_AUDIO_END,
    ASSISTANT_AUDIO_BEGIN,
    ASSISTANT_AUDIO_END,
    ACTION_END,
    TOOLCALL_BEGIN,
    TOOLCALL_END,
)
ANCHOR_SPECIALS = (VAD_SILENCE, TTS_PAD)
CONTROL_LABELS = (LABEL_RESPONSE, LABEL_INTERRUPT, LABEL_BACKCHANNEL)

# Layout tokens of the other layouts (SPEC section 16); also forbidden in untrusted text.
LWS_TOKENS = (
    "<unit>",
    "</unit>",
    "<|lc|>",
    "<|/lc|>",
    "<|spk|>",
    "<|eos|>",
    "<|rc|>",
    "<|/rc|>",
    "<|turn_eos|>",
)
CT_TOKENS = ("<SIL>", "<BOC>", "<EOC>", "<BOS>", "<PAD>", "<EOS>")

SPECIAL_TOKENS: tuple[str, ...] = CHANNEL_MARKERS + ANCHOR_SPECIALS + CONTROL_LABELS
ALL_RESERVED: tuple[str, ...] = SPECIAL_TOKENS + LWS_TOKENS + CT_TOKENS

LABEL_TOKEN_BY_NAME = {
    "response": LABEL_RESPONSE,
    "interrupt": LABEL_INTERRUPT,
    "backchannel": LABEL_BACKCHANNEL,
}

# Any <|...|> is reserved syntax even if not (yet) in the vocabulary; plus every literal reserved token.
_MARKER_RE = re.compile(
    r"<\|[^<>|]{0,64}\|>|" + "|".join(re.escape(t) for t in sorted(ALL_RESERVED, key=len, reverse=True))
)


def find_markers(text: str) -> list[str]:
    """All reserved marker strings occurring in ``text`` (empty list when clean)."""
    return _MARKER_RE.findall(text)


# Control characters that never belong in a text: C0 but tab, LF and CR, then DEL, and C1 but NEL.
# A NUL or the ESC of an ANSI sequence would reach a T anchor, the action channel or a trace.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")


def find_control(text: str) -> str | None:
    """The first control character of ``text`` that no text may hold (see ``_CONTROL_RE``), or None."""
    m = _CONTROL_RE.search(text)
    return m.group() if m else None


def contains_marker(text: str) -> bool:
    return _MARKER_RE.search(text) is not None
