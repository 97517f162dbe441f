"""The old home of the word-unit rules, now :mod:`duplexloom.schemas.text_units`; re-exported so
existing imports keep working."""

from duplexloom.schemas.text_units import (  # noqa: F401  (re-exports)
    CJK_RANGES,
    WordUnit,
    is_cjk,
    pinyin_syllables,
    word_units,
)
