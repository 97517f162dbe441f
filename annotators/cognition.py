"""Per-second causal cognition (Listen-Write-Speak, SPEC section 10): segmentation, checks and the
offline generator.

Input: a user turn's text and language; the speech rate (characters/s for Chinese, words/s for
English) gives how long it takes to say, and :func:`segment_per_second` cuts it into the pieces
heard in each second (:func:`heard_counts`: how many word units by the end of each second, stored
on the stream so the timeline can time each entry). The LLM answers in one structured call
(``CognitionOut``); :func:`offline_streams` makes the same record without one. :func:`check`
keeps only causal, short, speakable answers, whoever made them.

Speech and writing: ``voice_response`` is what the assistant speaks, ``reply_text`` the full
written answer; :func:`speak_voice` makes the voice response the assistant turn's spoken text.

Reject codes: ``cognition_misaligned`` (not one entry per second, in order),
``cognition_over_budget`` (an entry longer than the character budget), ``cognition_empty_voice``
(empty ``voice_response``), ``cognition_not_causal`` (an entry at second t uses words first heard
after t).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from duplexloom.schemas.annotation import AnnotatedTurn, CognitionEntry, CognitionStream
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.text_units import CJK_RANGES
from duplexloom.timeline.augment import units as word_units
from duplexloom.timeline.cognition import heard_by_second

from .responses import CognitionOut

_CJK = re.compile(rf"[{CJK_RANGES}]")
_EN_WORD = re.compile(r"[a-z0-9']+")
# Words so common that reusing one early says nothing about having heard the rest.
_EN_STOP = frozenset(
    "the a an and or but to of in on at for is are was be it this that you i we they he she my your "
    "me with what how can do does please will would could about from".split()
)


def _units(text: str, lang: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the spoken word units (the timeline's own definition:
    English words; CJK characters and Latin runs for Chinese), so counts agree with alignment."""
    return [(u.start_char, u.end_char) for u in word_units(text, lang)]


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


def heard_counts(text: str, lang: str, rate_per_s: float) -> list[int]:
    """Word units heard by the end of each second of :func:`segment_per_second` (cumulative)."""
    n = len(_units(text, lang))
    if not n:
        return []
    n_seconds = max(1, math.ceil(n / rate_per_s))
    return [min(n, math.ceil((s + 1) * rate_per_s)) if s < n_seconds - 1 else n for s in range(n_seconds)]


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


# ---- the offline generator ---------------------------------------------------------------------

_EN_WH = frozenset("what when where who whom whose why how which".split())
_EN_AUX = frozenset("is are am was were can could do does did will would should shall may might".split())
_EN_REQUEST = frozenset("please tell help give show find play open close set turn book call let".split())
_ZH_QUESTION = ("吗", "呢", "什么", "怎么", "哪", "几", "多少", "多久", "多远", "谁", "为什么", "？", "?")
_ZH_REQUEST = ("请", "帮", "给我", "告诉", "打开", "关", "放", "订")
_ZH_DROP = re.compile(rf"[^{CJK_RANGES}A-Za-z0-9]")
# Offline phrasing, per language: (early confirmation, reasoning, final), each with {x} = heard words.
_PHRASES = {
    "en": {
        "early": "heard: {x}",
        "question": "a question on {x}",
        "request": "a request: {x}",
        "statement": "telling me {x}",
        "final": "got it, {x}; answering",
    },
    "zh": {
        "early": "听到：{x}",
        "question": "在问{x}",
        "request": "想让我{x}",
        "statement": "在说{x}",
        "final": "听完了，{x}，准备回答",
    },
}
_GIST_STOP = (
    _EN_STOP
    | _EN_WH
    | _EN_AUX
    | frozenset("should shall might must want need not too very just also some any".split())
)
_BARE = {
    "en": {"question": "a question", "request": "a request"},
    "zh": {"question": "在问", "request": "有请求"},
}
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
_CLAUSE_TAIL = re.compile(r"[,;,;，；、]+$")
_CLAUSE_END = re.compile(r"(?<=[,;,;，；、])\s*")


def intent_of(heard: str, lang: str) -> str | None:
    """``question`` / ``request`` once the heard words show it, else ``None`` (not yet clear)."""
    if lang == "zh":
        if any(q in heard for q in _ZH_QUESTION):
            return "question"
        return "request" if any(r in heard for r in _ZH_REQUEST) else None
    words = _EN_WORD.findall(heard.casefold())
    if "?" in heard or (words and (words[0] in _EN_WH or words[0] in _EN_AUX)) or _EN_WH & set(words):
        return "question"
    return "request" if _EN_REQUEST & set(words) else None


def _gist(heard: str, lang: str, room: int) -> str:
    """The latest content of ``heard`` in at most ``room`` characters (content words / characters)."""
    if room <= 0:
        return ""
    if lang == "zh":
        return _ZH_DROP.sub("", heard)[-room:]
    words = [w for w in _EN_WORD.findall(heard.casefold()) if w not in _GIST_STOP and len(w) > 2]
    out: list[str] = []
    for w in reversed(words):
        if len(", ".join([w, *out])) > room:
            break
        out.insert(0, w)
    return ", ".join(out)


def _causal(text: str, pieces: Sequence[str], t: int, lang: str) -> bool:
    heard = _keys(" ".join(pieces[: t + 1]), lang)
    return not (_keys(text, lang) & (_keys(" ".join(pieces[t + 1 :]), lang) - heard))


def offline_entries(pieces: Sequence[str], lang: str, budget: int) -> list[CognitionEntry]:
    """One causal entry per second: short confirmations until the intent shows, then reasoning.

    Every entry uses only words heard by its second; a phrasing whose own words the user says
    later falls back to the heard words alone.
    """
    ph = _PHRASES[lang]
    out = []
    for t in range(len(pieces)):
        heard = ("" if lang == "zh" else " ").join(p for p in pieces[: t + 1] if p)
        intent = intent_of(heard, lang)
        key = "final" if t == len(pieces) - 1 else (intent or "early")
        if key == "final":
            ph_final = ph["final"].replace("{x}", ph[intent or "statement"])
            template = ph_final
        else:
            template = ph[key]
        candidates = []
        for tpl in (template, "{x}"):
            room = budget - len(tpl.replace("{x}", ""))
            gist = _gist(heard, lang, room)
            if gist:
                candidates.append(tpl.replace("{x}", gist))
        if intent is not None:  # nothing worth quoting yet, but the intent already shows
            candidates.append(_BARE[lang][intent])
        candidates.append("…" if lang == "zh" else "...")
        text = next(c for c in candidates if len(c) <= budget and _causal(c, pieces, t, lang))
        out.append(CognitionEntry(second=t, text=text))
    return out


def voice_of(answer: str, lang: str, max_units: int) -> str:
    """A short speakable form of ``answer``: all of it when short, else its first sentence, else its
    first clause, else its first ``max_units`` word units."""
    answer = answer.strip()
    if len(_units(answer, lang)) <= max_units:
        return answer
    for splitter in (_SENTENCE_END, _CLAUSE_END):
        first = next((s.strip() for s in splitter.split(answer) if s.strip()), "")
        if first and len(_units(first, lang)) <= max_units:
            return _CLAUSE_TAIL.sub("", first)
        answer = first or answer
    spans = _units(answer, lang)
    return answer[: spans[max_units - 1][1]] if len(spans) > max_units else answer


def reply_turn(turns: Sequence[AnnotatedTurn], user_index: int) -> int | None:
    """Index of the assistant turn that answers user turn ``user_index`` (before the next user turn)."""
    for j in range(user_index + 1, len(turns)):
        if turns[j].role == "assistant":
            return j
        if turns[j].role == "user":
            return None
    return None


def offline_streams(
    turns: Sequence[AnnotatedTurn],
    lang: str,
    *,
    rate_per_s: float,
    char_budget: int,
    voice_max_units: int,
    max_turns: int | None = None,
) -> tuple[CognitionStream, ...]:
    """Causal per-second cognition for each user turn that gets a reply, without an LLM.

    The reply is the seed's assistant turn: it stays the written answer (``reply_text``), its
    first sentence (or clause) becomes ``voice_response``. Raises ``RejectError`` through
    :func:`check` when a stream fails the quality checks.
    """
    streams = []
    for i, turn in enumerate(turns):
        if turn.role != "user":
            continue
        j = reply_turn(turns, i)
        if j is None:
            continue
        pieces = segment_per_second(turn.text, lang, rate_per_s)
        if not pieces:
            continue
        out = CognitionOut(
            entries=offline_entries(pieces, lang, char_budget),
            voice_response=voice_of(turns[j].text, lang, voice_max_units),
            reply_text=turns[j].text,
        )
        check(out, pieces, lang, char_budget)
        streams.append(to_stream(i, out, turn.text, lang, rate_per_s))
        if max_turns is not None and len(streams) >= max_turns:
            break
    return tuple(streams)


def speak_voice(turns: Sequence[AnnotatedTurn], streams: Sequence[CognitionStream]) -> list[AnnotatedTurn]:
    """``turns`` with each answered reply turn's text replaced by its stream's ``voice_response``:
    the assistant speaks the short answer, the full one stays the written channel (``reply_text``)."""
    out = list(turns)
    for st in streams:
        j = reply_turn(turns, st.turn_index)
        if j is not None:
            out[j] = out[j].model_copy(update={"text": st.voice_response})
    return out


OFFLINE_PROV = "offline:cognition.v1"


def offline_think(
    turns: Sequence[AnnotatedTurn], lang: str, config
) -> tuple[list[AnnotatedTurn], tuple[CognitionStream, ...]]:
    """The think family without an LLM: a stream for every answered user turn, and the turns with
    each reply spoken as its voice response (``config``: an :class:`~.config.AnnotatorConfig`)."""
    zh = lang == "zh"
    streams = offline_streams(
        turns,
        lang,
        rate_per_s=config.speech_rate_zh_chars_per_s if zh else config.speech_rate_en_words_per_s,
        char_budget=config.cognition_char_budget_zh if zh else config.cognition_char_budget_en,
        voice_max_units=config.voice_max_units_zh if zh else config.voice_max_units_en,
    )
    return speak_voice(turns, streams), streams


def pieces_from_counts(text: str, lang: str, counts: Sequence[int]) -> list[str]:
    """The pieces of ``text`` heard in each second, given the units heard by the end of each."""
    spans = _units(text, lang)
    out, prev = [], 0
    for k in counts:
        k = min(k, len(spans))
        end = len(text) if k == len(spans) else spans[k - 1][1]  # the last piece keeps the final "?"
        out.append(text[spans[prev][0] : end].strip() if k > prev else "")
        prev = max(prev, k)
    return out


def on_session_clock(annotation, timeline, config):
    """``annotation`` with its offline cognition streams re-cut at the seconds the user really
    spoke on ``timeline`` (the aligned words, not the speech-rate estimate), so that every second
    of a user turn has its note and each note says what was heard by the end of that second. LLM
    streams are kept as they are (re-asking after synthesis is not done). Raises ``RejectError``
    when a re-cut stream fails :func:`check`."""
    if annotation.provenance.get("cognition") != OFFLINE_PROV:
        return annotation
    lang = annotation.lang
    budget = config.cognition_char_budget_zh if lang == "zh" else config.cognition_char_budget_en
    streams = []
    for st in annotation.cognition:
        text = annotation.turns[st.turn_index].text
        first, counts = heard_by_second(timeline, st.turn_index, len(_units(text, lang)))
        if not counts:
            streams.append(st)  # not on the timeline: think_actions counts it as omitted
            continue
        pieces = pieces_from_counts(text, lang, counts)
        entries = offline_entries(pieces, lang, budget)
        check(
            CognitionOut(entries=entries, voice_response=st.voice_response, reply_text=st.reply_text),
            pieces,
            lang,
            budget,
        )
        streams.append(
            st.model_copy(
                update={"entries": tuple(entries), "heard_units": tuple(counts), "start_second": first}
            )
        )
    return annotation.model_copy(update={"cognition": tuple(streams)})


def to_stream(
    turn_index: int, out: CognitionOut, user_text: str, lang: str, rate_per_s: float
) -> CognitionStream:
    """The annotation record of a checked cognition output (offline or LLM) for one user turn."""
    return CognitionStream(
        turn_index=turn_index,
        entries=tuple(out.entries),
        voice_response=out.voice_response,
        reply_text=out.reply_text,
        heard_units=tuple(heard_counts(user_text, lang, rate_per_s)),
    )
