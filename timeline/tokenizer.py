"""Tokenizers that count the action channel's budget (SPEC section 3).

A run declares one tokenizer and records it (:class:`TokenizerInfo`) in every sample:

* ``builtin`` (``load_tokenizer(None)``): offline and dependency-free. Pieces are, in order of
  precedence: every reserved token of ``schemas/tokens.py`` (one piece each); one piece per CJK
  character (ideographs, kana, hangul, CJK and full-width punctuation); Latin/other word runs cut
  into pieces of at most 4 characters, the leading whitespace kept on the first piece; any other
  character (ASCII punctuation, symbols) alone, with its leading whitespace; leftover whitespace
  (before a CJK character, a reserved token or at the end) as its own piece.
  Ids: reserved tokens first, then a fixed base vocabulary of single characters (printable ASCII,
  CJK punctuation, CJK unified ideographs, full-width forms), then ``HASH_BUCKETS`` buckets into
  which every other piece is hashed with blake2b (stable across processes and machines). Bucket ids
  are not invertible: ``id_to_piece`` returns ``<bucket:N>`` for them.
* ``tokenizers`` (``load_tokenizer("path/to/tokenizer.json")``): any Hugging Face ``tokenizer.json``,
  so budgets match the target backbone. Reserved tokens missing from its vocabulary are added as
  special tokens, so each counts as exactly one token.

Input: text. Output: pieces (strings whose concatenation is exactly the text), counts, ids.
No reject codes: text with markers is refused earlier (``schemas.tokens.find_markers``).
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

from tokenizers import AddedToken
from tokenizers import Tokenizer as _Tok

from duplexloom.schemas.sample import TokenizerInfo
from duplexloom.schemas.tokens import ALL_RESERVED

WORD_PIECE_CHARS = 4
HASH_BUCKETS = 32_768

# CJK ideographs, kana, hangul, CJK symbols/punctuation and full-width forms: one token per char.
CJK_CLASS = _CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
)
_RESERVED_ALT = "|".join(re.escape(t) for t in sorted(ALL_RESERVED, key=len, reverse=True))
# Groups: 1 reserved, 2 CJK char, 3 word run (4 its leading whitespace), 5 other char, 6 whitespace.
_PIECE_RE = re.compile(
    rf"({_RESERVED_ALT})|([{_CJK}])|((\s*)[^\W{_CJK}]+)|(\s*[^\s{_CJK}])|(\s+)",
)

# Fixed base vocabulary of single characters, after the reserved tokens.
_BASE_RANGES = ((0x20, 0x7E), (0x3000, 0x303F), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF))


@runtime_checkable
class Tokenizer(Protocol):
    """What the serializer and the trainer need from a tokenizer."""

    @property
    def info(self) -> TokenizerInfo: ...

    @property
    def vocab_size(self) -> int: ...

    def pieces(self, text: str) -> list[str]:
        """Token strings whose concatenation is exactly ``text``; each reserved token is one piece."""
        ...

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def id_to_piece(self, i: int) -> str: ...


def _build_base() -> tuple[list[str], dict[str, int]]:
    vocab = list(ALL_RESERVED)
    for lo, hi in _BASE_RANGES:
        vocab.extend(chr(c) for c in range(lo, hi + 1))
    return vocab, {p: i for i, p in enumerate(vocab)}


class BuiltinTokenizer:
    """The offline default tokenizer (rules in the module docstring)."""

    # Pieces tokenized on their own give the same pieces again, so counts add up across a split.
    additive = True

    def __init__(self) -> None:
        self._vocab, self._ids = _build_base()
        self._info = TokenizerInfo(name="builtin", kind="builtin")

    @property
    def info(self) -> TokenizerInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return len(self._vocab) + HASH_BUCKETS

    def pieces(self, text: str) -> list[str]:
        out: list[str] = []
        for m in _PIECE_RE.finditer(text):
            word = m.group(3)
            if word is None or len(word) - len(m.group(4)) <= WORD_PIECE_CHARS:
                out.append(m.group(0))
                continue
            ws = m.group(4)
            body = word[len(ws) :]
            out.append(ws + body[:WORD_PIECE_CHARS])
            out.extend(
                body[i : i + WORD_PIECE_CHARS] for i in range(WORD_PIECE_CHARS, len(body), WORD_PIECE_CHARS)
            )
        return out

    def count(self, text: str) -> int:
        n = 0
        for m in _PIECE_RE.finditer(text):
            word = m.group(3)
            if word is None:
                n += 1
            else:
                n += -(-(len(word) - len(m.group(4))) // WORD_PIECE_CHARS)
        return n

    def piece_id(self, piece: str) -> int:
        i = self._ids.get(piece)
        if i is not None:
            return i
        digest = hashlib.blake2b(piece.encode("utf-8"), digest_size=8).digest()
        return len(self._vocab) + int.from_bytes(digest, "big") % HASH_BUCKETS

    def encode(self, text: str) -> list[int]:
        return [self.piece_id(p) for p in self.pieces(text)]

    def id_to_piece(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise IndexError(f"token id {i} outside the vocabulary of {self.vocab_size}")
        if i < len(self._vocab):
            return self._vocab[i]
        return f"<bucket:{i - len(self._vocab)}>"


class HFTokenizer:
    """A ``tokenizer.json`` through the ``tokenizers`` library, with the reserved tokens as specials."""

    # Sub-word merges across a split point can change counts: the FIFO re-counts each chunk's text.
    additive = False

    def __init__(self, path: str) -> None:
        p = Path(path)
        data = p.read_bytes()
        # Check the shape first: the tokenizers library reports bad files with an untyped Exception.
        spec = json.loads(data.decode("utf-8"))
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
            raise ValueError(f"{path} is not a tokenizer.json (no 'model' object)")
        self._tok = _Tok.from_str(data.decode("utf-8"))
        missing = [t for t in ALL_RESERVED if self._tok.token_to_id(t) is None]
        if missing:
            self._tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
        self._info = TokenizerInfo(name=p.name, kind="tokenizers", sha256=hashlib.sha256(data).hexdigest())

    @property
    def info(self) -> TokenizerInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def _span_starts(self, text: str) -> list[int]:
        enc = self._tok.encode(text, add_special_tokens=False)
        return [s for s, e in enc.offsets]

    def pieces(self, text: str) -> list[str]:
        """Split at token start offsets. Tokens sharing one span (byte-level pieces of one character)
        form one piece, and whitespace a normalizer dropped stays glued to the piece before it, so the
        concatenation is always exactly ``text``."""
        if not text:
            return []
        cuts = sorted({0, *(s for s in self._span_starts(text) if 0 < s < len(text))})
        cuts.append(len(text))
        return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def id_to_piece(self, i: int) -> str:
        piece = self._tok.id_to_token(i)
        if piece is None:
            raise IndexError(f"token id {i} outside the vocabulary of {self.vocab_size}")
        return piece


@lru_cache(maxsize=8)
def load_tokenizer(path: str | None = None) -> Tokenizer:
    """``None`` gives the builtin tokenizer; a path gives that ``tokenizer.json`` (cached per path)."""
    if path is None or path == "builtin":
        return BuiltinTokenizer()
    return HFTokenizer(path)
