"""Word units and CJK ranges: the one definition of "a word", shared by TTS native times, the
aligners and the timeline's augmentation (it lives in ``schemas/`` because every layer needs it and
``schemas/`` imports nothing of ours).

Input: a text and its language (``"en"`` or ``"zh"``). Output: a list of :class:`WordUnit` with the
word as written and its ``[start, end)`` character span in the text.

- English: maximal runs of letters, digits and inner apostrophes/hyphens; punctuation is not a word.
- Chinese: every CJK character is one word unit (no segmenter, so the choice is deterministic and
  matches the per-character token placement of SPEC section 6-7); runs of Latin letters or digits
  inside Chinese text are one unit each.

Romanization for models with Latin labels (pypinyin) lives here too, so that the espeak backend
(``cmn-latn-pinyin`` reads tone-numbered pinyin) and the aligners agree on it.
No reject codes: callers decide what an empty unit list means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# CJK Unified Ideographs, Extension A and the compatibility block: the characters that are one word
# unit each. (The token vocabulary's wider class, timeline/tokenizer.py CJK_CLASS, also takes kana,
# hangul and full-width punctuation as single tokens: a different rule, on purpose.)
CJK_RANGES = _CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_EN_WORD = re.compile(r"[A-Za-z0-9\u00c0-\u024f]+(?:['\u2019\-][A-Za-z0-9\u00c0-\u024f]+)*")
_ZH_UNIT = re.compile(rf"[{_CJK}]|[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")
_IS_CJK = re.compile(rf"[{_CJK}]")


@dataclass(frozen=True)
class WordUnit:
    """A word as written and its half-open character span ``[start_char, end_char)`` in the text."""

    text: str
    start_char: int
    end_char: int


def word_units(text: str, lang: str) -> list[WordUnit]:
    """Split ``text`` into word units for ``lang`` (see module docstring)."""
    pattern = _ZH_UNIT if lang == "zh" else _EN_WORD
    return [WordUnit(m.group(0), m.start(), m.end()) for m in pattern.finditer(text)]


def is_cjk(ch: str) -> bool:
    return bool(_IS_CJK.fullmatch(ch))


def pinyin_syllables(units: list[WordUnit], tones: bool) -> list[str]:
    """One romanized string per unit: tone-numbered (``ni3``) or bare (``ni``) pinyin for a CJK
    character, the lower-cased unit itself otherwise. pypinyin is given the whole text run so that
    polyphonic characters are read in context."""
    # lazy: pypinyin (~0.2 s of dictionaries) only for Chinese text; every command imports schemas
    from pypinyin import Style, lazy_pinyin

    style = Style.TONE3 if tones else Style.NORMAL
    out: list[str] = []
    i = 0
    while i < len(units):
        if not is_cjk(units[i].text):
            out.append(units[i].text.lower())
            i += 1
            continue
        j = i
        while j < len(units) and is_cjk(units[j].text):
            j += 1
        run = "".join(u.text for u in units[i:j])
        syl = lazy_pinyin(run, style=style, neutral_tone_with_five=True, errors=lambda s: list(s))
        if len(syl) != j - i:
            # pypinyin returns one item per CJK character; anything else is a bug in our split.
            raise AssertionError(f"pypinyin gave {len(syl)} syllables for {j - i} characters: {run!r}")
        out.extend(s.lower().replace("ü", "v") for s in syl)
        i = j
    return out
