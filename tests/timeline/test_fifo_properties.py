"""Hypothesis property tests of the action FIFO (SPEC section 5) over random actions and budgets."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTok
from tokenizers import models, pre_tokenizers, trainers

from duplexloom.schemas import ActionObject, TimedSpan, Timeline, Utterance
from duplexloom.timeline.actions import render_action
from duplexloom.timeline.clock import ChunkGrid
from duplexloom.timeline.fifo import join_pieces, queue_order, schedule
from duplexloom.timeline.serialize import serialize
from duplexloom.timeline.tokenizer import load_tokenizer
from duplexloom.timeline.validate import check_chunks

GRID = ChunkGrid()
TOOL_ARGS = [
    ("set_car_setting", {"setting": "AC_temperature", "value": "26"}),
    ("navigate", {"destination": "上海虹桥站", "route_preference": "fastest"}),
    ("play_media", {"media_type": "artist", "artist": "The Beatles"}),
    ("next_track", {}),
    ("query_weather", {"city": "Hangzhou", "date": "tomorrow"}),
]
WORDS = ["hello", "there", "internationalization", "明白", "好的", "ok", "26度", "a", "jazz", "!"]


@st.composite
def action_sets(draw):
    n_chunks = draw(st.integers(1, 40))
    duration = n_chunks * GRID.chunk_len - draw(st.integers(0, GRID.chunk_len - 1))
    n = draw(st.integers(0, 12))
    actions = []
    for i in range(n):
        kind = draw(st.sampled_from(["tool", "label", "asr", "think"]))
        offset = draw(st.integers(0, duration))
        aid = f"a{i:02d}"
        if kind == "tool":
            name, args = draw(st.sampled_from(TOOL_ARGS))
            planning = draw(st.sampled_from([None, "", "用户觉得冷", "the user wants music"]))
            actions.append(
                ActionObject(id=aid, name=name, offset_samples=offset, planning=planning, parameters=args)
            )
        elif kind == "label":
            name = draw(st.sampled_from(["response", "interrupt", "backchannel"]))
            actions.append(ActionObject(id=aid, name=name, offset_samples=offset))
        else:
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
            actions.append(ActionObject(id=aid, name=kind, offset_samples=offset, text=" ".join(words)))
    lang = draw(st.sampled_from(["zh", "en"]))
    # A user utterance with random non-overlapping words, so ASR actions (whose lag can run past the
    # session end) join the queue.
    cuts = sorted(draw(st.lists(st.integers(0, duration), min_size=0, max_size=16, unique=True)))
    spans = [
        TimedSpan(text=draw(st.sampled_from(WORDS)), start_samples=a, end_samples=b)
        for a, b in zip(cuts[::2], cuts[1::2], strict=False)
    ]
    utts = ()
    if spans:
        utts = (
            Utterance(
                id="u",
                speaker="user",
                lang=lang,
                text=" ".join(w.text for w in spans),
                words=tuple(spans),
                audio_start_samples=spans[0].start_samples,
                audio_end_samples=spans[-1].end_samples,
            ),
        )
    tl = Timeline(
        utterances=utts,
        session_id=f"prop-{draw(st.integers(0, 999))}",
        duration_samples=duration,
        family="toolcall",
        lang=lang,
        actions=tuple(actions),
    )
    return tl, draw(st.integers(1, 24))


def _check_invariants(tl, tok, budget, per_chunk):
    n = GRID.n_chunks(tl.duration_samples)
    assert len(per_chunk) >= n
    rendered = {a.id: render_action(a, lang=tl.lang, phrase_rng_seed=tl.session_id) for a in tl.actions}
    stream = [(c, p) for c, pieces in enumerate(per_chunk) for p in pieces]
    # Budget: each chunk's text, tokenized on its own.
    for pieces in per_chunk:
        assert tok.count(join_pieces(pieces)) <= budget
    # Each action's pieces are one contiguous run that concatenates to its rendered text and closes once.
    order = []
    for _, p in stream:
        if not order or order[-1] != p.action_id:
            assert p.action_id not in order, "an action was interleaved"
            order.append(p.action_id)
    for aid, text in rendered.items():
        mine = [(c, p) for c, p in stream if p.action_id == aid]
        assert "".join(p.text for _, p in mine) == text
        assert [p.closes for _, p in mine] == [False] * (len(mine) - 1) + [True]
        trigger = GRID.chunk_of(next(a.offset_samples for a in tl.actions if a.id == aid))
        assert mine[0][0] >= trigger, "started before its trigger chunk"
    # Start order equals queue order.
    queue = [a.id for a, _ in queue_order([(a, rendered[a.id]) for a in tl.actions], GRID)]
    assert order == queue
    # Work conservation: a chunk left with spare budget has no ready, unfinished action at its end.
    closed_by = {p.action_id: c for c, p in stream if p.closes}
    for c, pieces in enumerate(per_chunk):
        if sum(p.tokens for p in pieces) < budget and tok.additive:
            for a in tl.actions:
                if GRID.chunk_of(a.offset_samples) <= c:
                    assert closed_by[a.id] <= c, f"chunk {c} had budget left while {a.id} waited"
    # Padding only as long as the queue needs it.
    if len(per_chunk) > n:
        assert per_chunk[-1], "trailing empty padding chunk"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action_sets())
def test_fifo_invariants_builtin(case):
    tl, budget = case
    tok = load_tokenizer(None)
    rendered = [(a, render_action(a, lang=tl.lang, phrase_rng_seed=tl.session_id)) for a in tl.actions]
    per_chunk = schedule(rendered, tok, GRID, GRID.n_chunks(tl.duration_samples), budget=budget)
    _check_invariants(tl, tok, budget, per_chunk)
    chunks = serialize(tl, tokenizer=tok, budget=budget, asr_sides=())
    assert check_chunks(tl, chunks, tok, budget) == []
    # With user ASR: the derived actions obey the same invariants and the validator re-derives them.
    with_asr = serialize(tl, tokenizer=tok, budget=budget, asr_sides=("user",))
    assert check_chunks(tl, with_asr, tok, budget) == []
    assert all(c.action_tokens <= budget for c in with_asr)
    if len(with_asr) > GRID.n_chunks(tl.duration_samples):
        assert with_asr[-1].action_text


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory):
    tok = HFTok(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [" ".join(WORDS), '{"function":"navigate","arguments":{"destination":"x"}}', "用户觉得冷"] * 30
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tok.save(str(path))
    return load_tokenizer(str(path))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(action_sets())
def test_fifo_invariants_tokenizer_json(hf_tok, case):
    tl, budget = case
    budget = max(budget, 4)  # a byte-level BPE may spend up to 3 tokens on one CJK character
    chunks = serialize(tl, tokenizer=hf_tok, budget=budget, asr_sides=())
    per_chunk = [list(c.pieces) for c in chunks]
    _check_invariants(tl, hf_tok, budget, per_chunk)
    assert check_chunks(tl, chunks, hf_tok, budget) == []


def test_check_chunks_catches_tampering():
    tok = load_tokenizer(None)
    tl = Timeline(
        session_id="t",
        duration_samples=GRID.chunk_len * 10,
        family="toolcall",
        actions=(
            ActionObject(
                id="a", name="navigate", offset_samples=GRID.chunk_len * 2, parameters={"destination": "家"}
            ),
            ActionObject(id="b", name="response", offset_samples=GRID.chunk_len * 2),
        ),
    )
    chunks = serialize(tl, tokenizer=tok, budget=6, asr_sides=())
    assert check_chunks(tl, chunks, tok, 6) == []
    codes = {v.code for v in check_chunks(tl, chunks, tok, 3)}
    assert "over_budget" in codes
    # Move the first piece one chunk earlier: it now starts before its trigger.
    moved = list(chunks)
    first = next(i for i, c in enumerate(moved) if c.pieces)
    moved[first - 1] = moved[first - 1].model_copy(
        update={
            "pieces": moved[first].pieces,
            "action_text": moved[first].action_text,
            "action_tokens": moved[first].action_tokens,
        }
    )
    moved[first] = moved[first].model_copy(update={"pieces": (), "action_text": "", "action_tokens": 0})
    assert "starts_before_trigger" in {v.code for v in check_chunks(tl, moved, tok, 6)}
    # Drop the label: it never appears.
    dropped = [
        c.model_copy(update={"pieces": tuple(p for p in c.pieces if p.action_id != "b")}) for c in chunks
    ]
    codes = {v.code for v in check_chunks(tl, dropped, tok, 6)}
    assert {"action_missing", "pieces_mismatch"} <= codes
    # Break the anchor.
    bad_anchor = [chunks[0].model_copy(update={"anchor": ""})] + chunks[1:]
    assert "missing_anchor" in {v.code for v in check_chunks(tl, bad_anchor, tok, 6)}
