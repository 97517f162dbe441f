"""Turn-taking augmentation helpers (SPEC sections 8, 12): pure functions over text and utterances.

- word units and anchor lookup (``find_units``, ``anchor_end_samples``): an anchor is matched on
  normalized units (lower case, no punctuation; one unit per CJK character) and resolves to the end
  of its last word on the utterance's clock;
- ``split_at_clause``: where a user turn is split for a hesitation pause;
- ``interrupt_anchor``: the semantic interrupt anchor of a barge-in text (after an acknowledgement
  and connectives like "you are right, but ..." the intent is clear only once content words follow);
- ``cut_utterance`` / ``cut_audio``: an interrupted assistant keeps the words whose audio started
  before the stop, and its audio fades out at the stop.

Input: texts, utterance records on the clip clock (:class:`~duplexloom.schemas.ClipUtterance`) or the
session clock (:class:`~duplexloom.schemas.Utterance`; cuts only), integer samples, numpy audio.
Reject code: ``anchor_not_aligned`` (the anchor words are not in the aligned utterance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from duplexloom.schemas import ClipUtterance, RejectError, TimedSpan, Utterance
from duplexloom.schemas.text_units import word_units

_CLAUSE_PUNCT = re.compile(r"[,，、;；:：.。!！?？\u2014]")

# Short acknowledgements. The first of each list is the ambiguous one of SPEC section 8: used as a
# backchannel in one sample and as the start of an interruption in another.
ACK_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("you are right", "mm-hmm", "yeah", "I see", "right", "okay"),
    "zh": ("你说得对", "嗯嗯", "对", "是的", "没错", "好的"),
}
FILLERS: dict[str, tuple[str, ...]] = {
    "en": ("um", "uh", "well", "hmm", "let me think"),
    "zh": ("嗯", "呃", "那个", "就是", "我想想"),
}


@dataclass(frozen=True)
class Unit:
    """A normalized word unit and its ``[start_char, end_char)`` span in the source text."""

    norm: str
    start_char: int
    end_char: int


def units(text: str, lang: str) -> list[Unit]:
    """Word units of ``text`` (:func:`.schemas.text_units.word_units`: English words, or single
    CJK characters / Latin runs for Chinese), lower-cased with typographic apostrophes folded."""
    return [
        Unit(w.text.lower().replace("\u2019", "'"), w.start_char, w.end_char) for w in word_units(text, lang)
    ]


def norm_units(text: str, lang: str) -> list[str]:
    return [u.norm for u in units(text, lang)]


def join_units(words: list[str], lang: str) -> str:
    return "".join(words) if lang == "zh" else " ".join(words)


def find_units(haystack: list[str], needle: list[str]) -> int | None:
    """Index of the first occurrence of ``needle`` as a contiguous run in ``haystack``."""
    if not needle:
        return None
    n = len(needle)
    for i in range(len(haystack) - n + 1):
        if haystack[i : i + n] == needle:
            return i
    return None


def _timed_units(utt: Utterance | ClipUtterance) -> list[tuple[str, int]]:
    """(normalized unit, end sample) for every unit of the utterance's words.

    For Chinese a word may hold several characters; each character gets the word's end (character
    times are used instead when the aligner gave them).
    """
    spans: tuple[TimedSpan, ...] = utt.chars if (utt.lang == "zh" and utt.chars) else utt.words
    out: list[tuple[str, int]] = []
    for w in spans:
        for u in norm_units(w.text, utt.lang):
            out.append((u, w.end_samples))
    return out


def anchor_end_samples(utt: Utterance | ClipUtterance, anchor: str) -> int:
    """End of the anchor's last word on the utterance's clock, clip or session (SPEC section 4)."""
    timed = _timed_units(utt)
    needle = norm_units(anchor, utt.lang)
    i = find_units([u for u, _ in timed], needle)
    if i is None:
        raise RejectError(
            "anchor_not_aligned",
            f"anchor {anchor!r} not found in the aligned words of {utt.id} ({utt.text!r})",
        )
    return timed[i + len(needle) - 1][1]


def anchor_in_text(text: str, anchor: str, lang: str) -> tuple[int, int] | None:
    """Unit index span ``[i, j)`` of ``anchor`` inside ``text``, or ``None``."""
    needle = norm_units(anchor, lang)
    i = find_units(norm_units(text, lang), needle)
    return None if i is None else (i, i + len(needle))


def split_candidates(text: str, lang: str, forbidden: list[tuple[int, int]] = ()) -> list[int]:
    """Unit indices ``k`` where ``text`` may be split (piece 1 = units ``[:k]``).

    Clause boundaries (punctuation between two units) first; without any, every unit boundary in
    the middle third of the turn. A split never falls strictly inside a ``forbidden`` unit span (a
    tool-call anchor must stay within one piece).
    """
    us = units(text, lang)
    if len(us) < 2:
        return []

    def ok(k: int) -> bool:
        return all(not (i < k < j) for i, j in forbidden)

    clause = [
        k for k in range(1, len(us)) if _CLAUSE_PUNCT.search(text[us[k - 1].end_char : us[k].start_char])
    ]
    clause = [k for k in clause if ok(k)]
    if clause:
        return clause
    lo, hi = max(1, len(us) // 3), max(1, (2 * len(us)) // 3)
    return [k for k in range(lo, hi + 1) if k < len(us) and ok(k)]


def split_text(text: str, lang: str, k: int) -> tuple[str, str]:
    """Split ``text`` before unit ``k``: the first piece keeps its clause punctuation."""
    us = units(text, lang)
    cut = us[k].start_char
    return text[:cut].rstrip(), text[cut:].lstrip()


# Words that open a turn without saying what it is about: an acknowledgement may be followed by
# these before the new thought shows ("you are right, but actually the ..."). English function
# words are not content either: "but the" shows nothing yet, "but the schedule" does.
_CONNECTIVES: dict[str, frozenset[str]] = {
    "en": frozenset(
        "but however though although yet wait hold on actually well so and oh hey sorry no um uh "
        "just one second sec".split()
    ),
    "zh": frozenset(
        ["不过", "但是", "可是", "但", "等等", "等一下", "哎", "诶", "其实", "那", "那个", "嗯", "呃"]
    ),
}
_FUNCTION: dict[str, frozenset[str]] = {}
_FUNCTION["en"] = frozenset(
    "a an the i you we he she it they me my your our his her its their this that these those is are "
    "was were be been am do does did to of in on at for with about from by as can could would should "
    "will shall may might must have has had not what how when where which who why if then than there "
    "here".split()
)
_FUNCTION["zh"] = frozenset("我你他她它们的了是在想要先就也都还把被给吧吗呢啊个这那一")
# How many content units show a new thought: two English content words, three Chinese characters.
_CONTENT_UNITS = {"en": 2, "zh": 3}


def interrupt_anchor(text: str, lang: str) -> str:
    """The words of a barge-in at which it is clearly a new thought (SPEC 8: the semantic anchor).

    Skip a leading acknowledgement ("you are right", "你说得对") and connectives ("but", "不过",
    "wait"); the anchor ends once ``_CONTENT_UNITS`` content units follow (function words such as
    "the" or "我" do not count): "you are right, but the schedule is tight" -> "... but the schedule is", "你说得对，
    但是时间太紧了" -> "... 但是时间太紧". An acknowledgement alone never triggers: a text with too
    few content units is anchored on its last unit.
    """
    us = norm_units(text, lang)
    i = 0
    for ack in sorted(ACK_PHRASES[lang], key=lambda a: -len(norm_units(a, lang))):
        a = norm_units(ack, lang)
        if len(us) > len(a) and us[: len(a)] == a:
            i = len(a)
            break
    conn = _CONNECTIVES[lang]
    while i < len(us):
        # longest connective first: "但是" before "但"
        n = next((k for k in (3, 2, 1) if i + k <= len(us) and "".join(us[i : i + k]) in conn), 0)
        if lang == "en":
            n = 1 if us[i] in conn else 0
        if not n:
            break
        i += n
    need, function = _CONTENT_UNITS[lang], _FUNCTION[lang]
    seen = 0
    j = i
    while j < len(us) and seen < need:
        if us[j] not in function:
            seen += 1
        j += 1
    return join_units(us[: max(j, 1)], lang)


def starts_with_ack(text: str, lang: str) -> bool:
    us = norm_units(text, lang)
    return any(us[: len(norm_units(a, lang))] == norm_units(a, lang) for a in ACK_PHRASES[lang])


def _audio_span(utt: Utterance | ClipUtterance) -> tuple[int, int]:
    """``[start, end)`` of the utterance's audio on its own clock."""
    if isinstance(utt, ClipUtterance):
        return 0, utt.n_samples
    return utt.audio_start_samples, utt.audio_end_samples


def speech_start(utt: Utterance | ClipUtterance) -> int:
    """First sample of speech: the first word's start (clips may open with silence)."""
    return utt.words[0].start_samples if utt.words else _audio_span(utt)[0]


def speech_end(utt: Utterance | ClipUtterance) -> int:
    """End of speech: the last word's end (clips may close with silence), capped by a cut."""
    start, stop = _audio_span(utt)
    end = utt.words[-1].end_samples if utt.words else stop
    return min(end, stop) if stop > start else end


def cut_utterance(utt: Utterance, cut_samples: int) -> Utterance:
    """Keep the words whose audio started before ``cut_samples`` (session clock; SPEC section 6)."""

    def keep(spans: tuple[TimedSpan, ...]) -> tuple[TimedSpan, ...]:
        return tuple(
            s.model_copy(update={"end_samples": min(s.end_samples, cut_samples)})
            for s in spans
            if s.start_samples < cut_samples
        )

    words = keep(utt.words)
    return utt.model_copy(
        update={
            "words": words,
            "chars": keep(utt.chars),
            "text": join_units([w.text for w in words], utt.lang),
            "audio_end_samples": min(utt.audio_end_samples, cut_samples),
            "cut_samples": cut_samples,
        }
    )


def cut_audio(audio: np.ndarray, keep_samples: int, fade_samples: int) -> np.ndarray:
    """The first ``keep_samples`` of ``audio`` with a linear fade over its last ``fade_samples``."""
    out = np.array(audio[:keep_samples], dtype=np.float32, copy=True)
    n = min(fade_samples, out.shape[0])
    if n > 0:
        out[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out
