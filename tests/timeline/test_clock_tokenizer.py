import pytest
from hypothesis import given
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTok
from tokenizers import models, pre_tokenizers, trainers

from duplexloom.schemas.tokens import ALL_RESERVED, SPECIAL_TOKENS
from duplexloom.timeline.clock import ChunkGrid
from duplexloom.timeline.tokenizer import BuiltinTokenizer, Tokenizer, load_tokenizer


def test_chunk_grid_defaults_and_edges():
    g = ChunkGrid()
    assert g.chunk_len == 2560
    assert g.n_chunks(0) == 0
    assert g.n_chunks(1) == 1
    assert g.n_chunks(2560) == 1
    assert g.n_chunks(2561) == 2
    assert g.n_chunks(40960) == 16  # 2.56 s
    assert g.chunk_of(2559) == 0 and g.chunk_of(2560) == 1
    assert g.chunk_start(3) == 7680 and g.chunk_end(3) == 10240
    assert ChunkGrid(24000, 80).chunk_len == 1920
    with pytest.raises(ValueError):
        ChunkGrid(22050, 1)


def test_builtin_piece_rules():
    t = load_tokenizer(None)
    assert isinstance(t, Tokenizer)
    assert t.pieces("明白了") == ["明", "白", "了"]
    assert t.pieces("hello world") == ["hell", "o", " worl", "d"]
    assert t.pieces("the heat, up") == ["the", " heat", ",", " up"]
    assert t.pieces("检测到用户插话<interrupt>") == list("检测到用户插话") + ["<interrupt>"]
    assert t.pieces('x<|toolcall_begin|>{"a":1}') == [
        "x",
        "<|toolcall_begin|>",
        "{",
        '"',
        "a",
        '"',
        ":",
        "1",
        "}",
    ]
    assert t.pieces("温度26度") == ["温", "度", "26", "度"]
    assert t.count("") == 0 and t.pieces("") == []


def test_builtin_ids_specials_first_and_stable():
    t = BuiltinTokenizer()
    for i, tok in enumerate(ALL_RESERVED):
        assert t.encode(tok) == [i]
        assert t.id_to_piece(i) == tok
    ids = t.encode("你好 internationalization")
    assert ids == BuiltinTokenizer().encode("你好 internationalization")
    assert all(0 <= i < t.vocab_size for i in ids)
    assert t.id_to_piece(ids[0]) == "你"
    assert t.id_to_piece(ids[-1]).startswith("<bucket:")
    with pytest.raises(IndexError):
        t.id_to_piece(t.vocab_size)


text_st = st.lists(
    st.one_of(
        st.sampled_from(list(ALL_RESERVED)),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
        st.sampled_from(["明白了", " hello", "ok,", "  ", "26度", "set_car_setting"]),
    ),
    max_size=8,
).map("".join)


@given(text_st)
def test_builtin_pieces_concatenate_and_count(text):
    t = load_tokenizer(None)
    pieces = t.pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert t.count(text) == len(pieces) == len(t.encode(text))
    # Additivity: a split at any piece boundary keeps the total count.
    for k in range(len(pieces) + 1):
        assert t.count("".join(pieces[:k])) + t.count("".join(pieces[k:])) == len(pieces)


@pytest.fixture(scope="module")
def hf_path(tmp_path_factory):
    tok = HFTok(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]", "<response>"])
    corpus = ["the heat is up, turn the AC to 26", "明白了,把空调调到二十六度", "play some music please"] * 20
    tok.train_from_iterator(corpus, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return str(path)


def test_hf_tokenizer_adds_specials_and_pieces_concatenate(hf_path):
    t = load_tokenizer(hf_path)
    assert t.info.kind == "tokenizers" and t.info.name == "tokenizer.json" and len(t.info.sha256) == 64
    for tok in SPECIAL_TOKENS:
        assert t.count(tok) == 1
        assert t.id_to_piece(t.encode(tok)[0]) == tok
    for text in ["明白了<response>", "the heat<|toolcall_begin|>{}<|toolcall_end|>", "  spaced  out ", "喵"]:
        pieces = t.pieces(text)
        assert "".join(pieces) == text
        assert len(pieces) <= t.count(text)
    assert "<interrupt>" in t.pieces("ok<interrupt>")
