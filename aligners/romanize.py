"""Text -> label sequences for CTC models with Latin labels.

Input: a text and its language. Output: one :class:`UnitTokens` per word unit
(:func:`duplexloom.schemas.text_units.word_units` is the shared definition of a word), with the
unit's characters and, for each character, the label strings that spell it: lower-cased letters
with accents stripped for English; toneless pinyin (pypinyin, ``ü`` -> ``v``) for each Chinese
character, so a Chinese character is both a word unit and a character unit.
Reject code: ``align_unrepresentable`` (a word has no character the model has a label for, e.g.
digits: spell numbers out before alignment).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from duplexloom.schemas import RejectError
from duplexloom.schemas.text_units import WordUnit, is_cjk, pinyin_syllables, word_units


@dataclass(frozen=True)
class UnitTokens:
    unit: WordUnit
    chars: tuple[str, ...]  # character units of the word (letters for en, the hanzi for zh)
    char_labels: tuple[tuple[str, ...], ...]  # per character, the labels that spell it (may be empty)

    @property
    def labels(self) -> list[str]:
        return [lab for labs in self.char_labels for lab in labs]


def _latin_labels(ch: str, label_set: frozenset[str]) -> tuple[str, ...]:
    base = unicodedata.normalize("NFKD", ch.lower())
    base = "".join(c for c in base if not unicodedata.combining(c)).replace("\u2019", "'")
    if base and all(c in label_set for c in base):
        return tuple(base)
    return ()


def text_to_units(text: str, lang: str, labels: tuple[str, ...] | frozenset[str]) -> list[UnitTokens]:
    """Word units of ``text`` with the labels (from ``labels``) that spell each character."""
    label_set = frozenset(labels)
    units = word_units(text, lang)
    romans = pinyin_syllables(units, tones=False) if lang == "zh" else [u.text for u in units]
    out: list[UnitTokens] = []
    for unit, roman in zip(units, romans, strict=True):
        if lang == "zh" and is_cjk(unit.text):
            labs = tuple(c for c in roman if c in label_set)
            if len(labs) != len(roman):
                labs = ()
            ut = UnitTokens(unit, (unit.text,), (labs,))
        else:
            chars = tuple(unit.text)
            ut = UnitTokens(unit, chars, tuple(_latin_labels(c, label_set) for c in chars))
        if not ut.labels:
            raise RejectError(
                "align_unrepresentable", f"word {unit.text!r} has no character the aligner can represent"
            )
        out.append(ut)
    return out
