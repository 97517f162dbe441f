"""The model vocabulary: layout tokens, the audio codebook and the declared tokenizer's text ids.

Model ids, in order: ``PAD``, ``UNK``, ``USER`` (the placeholder id at user-feature positions, whose
embedding is replaced by the projected log-mel feature), every special token of
``schemas/tokens.py`` (markers, anchor specials, labels; one id each), ``codebook_size`` audio codes,
then text ids. ``compact`` keeps only tokenizer ids seen in the training shards (a 54k-id builtin
vocabulary would dwarf a tiny model on CPU); ``full`` keeps every tokenizer id in order.

Input: tokenizer ids. Output: model ids. Saved in the checkpoint (:meth:`state_dict`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from duplexloom.schemas.tokens import SPECIAL_TOKENS
from duplexloom.timeline.tokenizer import Tokenizer

PAD, UNK, USER = 0, 1, 2
N_RESERVED = 3


class ModelVocab:
    def __init__(self, tokenizer: Tokenizer, codebook_size: int, text_ids: list[int] | None):
        self.tokenizer = tokenizer
        self.codebook_size = codebook_size
        self.special_ids = {t: N_RESERVED + i for i, t in enumerate(SPECIAL_TOKENS)}
        self.audio_offset = N_RESERVED + len(SPECIAL_TOKENS)
        self.text_offset = self.audio_offset + codebook_size
        self.full = text_ids is None
        # Tokenizer ids of the specials map onto the special model ids, whatever the tokenizer.
        self._tok_to_special: dict[int, int] = {}
        for t, mid in self.special_ids.items():
            ids = tokenizer.encode(t)
            if len(ids) != 1:
                raise ValueError(f"tokenizer {tokenizer.info.name} splits the special token {t!r}")
            self._tok_to_special[ids[0]] = mid
        if text_ids is None:
            self.text_ids: list[int] = []
            self._tok_to_model: dict[int, int] = {}
            self.size = self.text_offset + tokenizer.vocab_size
        else:
            self.text_ids = sorted(set(text_ids) - set(self._tok_to_special))
            self._tok_to_model = {t: self.text_offset + i for i, t in enumerate(self.text_ids)}
            self.size = self.text_offset + len(self.text_ids)
        self._model_to_tok = {m: t for t, m in self._tok_to_model.items()}

    @classmethod
    def fit(
        cls, tokenizer: Tokenizer, codebook_size: int, texts: Iterable[str], mode: str, min_count: int = 1
    ) -> ModelVocab:
        if mode == "full":
            return cls(tokenizer, codebook_size, None)
        counts: Counter[int] = Counter()
        for text in texts:
            counts.update(tokenizer.encode(text))
        return cls(tokenizer, codebook_size, [t for t, n in counts.items() if n >= min_count])

    def text(self, text: str) -> list[int]:
        """Model ids of ``text`` through the declared tokenizer; unseen ids (compact mode) -> UNK."""
        out = []
        for t in self.tokenizer.encode(text):
            mid = self._tok_to_special.get(t)
            if mid is None:
                mid = self.text_offset + t if self.full else self._tok_to_model.get(t, UNK)
            out.append(mid)
        return out

    def audio(self, code: int) -> int:
        return self.audio_offset + int(code)

    def describe(self, mid: int) -> str:
        """Human-readable piece of a model id (for traces of model output)."""
        if mid < N_RESERVED:
            return ("<pad>", "<unk>", "U")[mid]
        if mid < self.audio_offset:
            return SPECIAL_TOKENS[mid - N_RESERVED]
        if mid < self.text_offset:
            return f"A{mid - self.audio_offset}"
        tok = mid - self.text_offset if self.full else self._model_to_tok[mid]
        return self.tokenizer.id_to_piece(tok)

    def state_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer.info.model_dump(mode="json"),
            "codebook_size": self.codebook_size,
            "text_ids": None if self.full else list(self.text_ids),
            "specials": list(SPECIAL_TOKENS),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], tokenizer: Tokenizer) -> ModelVocab:
        if list(state["specials"]) != list(SPECIAL_TOKENS):
            raise ValueError("checkpoint was trained with a different special-token list")
        saved = state["tokenizer"]
        if saved["name"] != tokenizer.info.name or saved.get("sha256") != tokenizer.info.sha256:
            raise ValueError(f"checkpoint tokenizer {saved} differs from {tokenizer.info}")
        return cls(tokenizer, int(state["codebook_size"]), state["text_ids"])
