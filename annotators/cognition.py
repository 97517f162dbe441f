"""Per-second causal cognition (Listen-Write-Speak, SPEC section 10): segmentation and checks.

Input: a user turn's text and language; the speech rate (characters/s for Chinese, words/s for
English) gives how long it takes to say, and :func:`segment_per_second` cuts it into the pieces
heard in each second. The LLM answers in one structured call (``CognitionOut``); :func:`check`
keeps only causal, short, speakable answers.

Reject codes: ``cognition_misaligned`` (not one entry per second, in order),
``cognition_over_budget`` (an entry longer than the character budget), ``cognition_empty_voice``
(empty ``voice_response``), ``cognition_not_causal`` (an entry at second t uses words first heard
after t).
"""

from __future__ import annotations

import math
import re

from duplexloom.schemas.reject import RejectError

from .responses import CognitionOut

_CJK = re.compile(r"[\u3400-\u9fff]")
_EN_WORD = re.compile(r"[a-z0-9']+")
# Words so common that reusing one early says nothing about having heard the rest.
_EN_STOP = frozenset(
    "the a an and or but to of in on at for is are was be it this that you i we they he she my your "
    "me with what how can do does please will would could about from".split()
)


def _units(text: str, lang: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the spoken units: CJK characters and Latin words (zh), words (en)."""
    if lang == "zh":
        return [m.span() for m in re.finditer(r"[\u3400-\u9fff]|[A-Za-z0-9]+", text)]
    return [m.span() for m in re.finditer(r"\S+", text)]


def speech_seconds(text: str, lang: str, rate_per_s: float) -> float:
    """Estimated speaking time of ``text`` (units / rate)."""
    return len(_units(text, lang)) / rate_per_s


def segment_per_second(text: str, lang: str, rate_per_s: float) -> list[str]:
    """The pieces of ``text`` heard in seconds 0, 1, ... (a unit belongs to the second it starts in).

    Every second up to the estimated end gets a piece, possibly empty (a slow stretch).
    """
    units = _units(text, lang)
    if not units:
        return []
    n_seconds = max(1, math.ceil(len(units) / rate_per_s))
    bounds = [0] * (n_seconds + 1)
    for second in range(1, n_seconds):
        first_unit = min(len(units), math.ceil(second * rate_per_s))
        bounds[second] = units[first_unit][0] if first_unit < len(units) else len(text)
    bounds[n_seconds] = len(text)
    return [text[bounds[s] : bounds[s + 1]].strip() for s in range(n_seconds)]


def _keys(text: str, lang: str) -> set[str]:
    """Content keys for the causality test: CJK bigrams (zh) or non-stopword words (en)."""
    low = text.casefold()
    if lang == "zh":
        chars = "".join(_CJK.findall(low))
        return {chars[i : i + 2] for i in range(len(chars) - 1)} | {
            w for w in _EN_WORD.findall(low) if w not in _EN_STOP
        }
    return {w for w in _EN_WORD.findall(low) if w not in _EN_STOP and len(w) > 2}


def check(out: CognitionOut, pieces: list[str], lang: str, char_budget: int) -> None:
    """Raise ``RejectError`` unless ``out`` is one causal, in-budget entry per second heard."""
    if [e.second for e in out.entries] != list(range(len(pieces))):
        raise RejectError(
            "cognition_misaligned",
            f"need entries for seconds 0..{len(pieces) - 1}, got {[e.second for e in out.entries]}",
        )
    if not out.voice_response.strip():
        raise RejectError("cognition_empty_voice", "voice_response is empty")
    for e in out.entries:
        if len(e.text) > char_budget:
            raise RejectError(
                "cognition_over_budget", f"second {e.second}: {len(e.text)} characters > budget {char_budget}"
            )
    for t, e in enumerate(out.entries):
        heard = _keys(" ".join(pieces[: t + 1]), lang)
        future = _keys(" ".join(pieces[t + 1 :]), lang) - heard
        early = sorted(_keys(e.text, lang) & future)
        if early:
            raise RejectError(
                "cognition_not_causal", f"second {t} uses {early}, first heard after second {t}"
            )
