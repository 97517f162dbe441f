"""Golden tests of the lws and ct layouts on hand-made timelines (expected values derived by hand)."""

import pytest

from duplexloom.schemas import ActionObject, RejectError, TimedSpan, Timeline, Utterance
from duplexloom.timeline.layouts import render_ct, render_lws
from duplexloom.timeline.tokenizer import load_tokenizer

SR = 16_000
TOK = load_tokenizer(None)


def _s(x):
    return int(round(x * SR))


def _utt(uid, speaker, words, lang, audio=None, cut=None):
    spans = tuple(TimedSpan(text=t, start_samples=_s(a), end_samples=_s(b)) for t, a, b in words)
    a0, a1 = audio if audio else (words[0][1], words[-1][2])
    text = ("" if lang == "zh" else " ").join(w for w, _, _ in words)
    return Utterance(
        id=uid,
        speaker=speaker,
        lang=lang,
        text=text,
        words=spans,
        audio_start_samples=_s(a0),
        audio_end_samples=_s(a1),
        cut_samples=None if cut is None else _s(cut),
    )


LWS_TL = Timeline(
    session_id="lws",
    duration_samples=_s(5.0),
    lang="en",
    family="think",
    utterances=(
        _utt("u1", "user", [("what", 1.2, 1.5), ("time", 1.5, 1.9)], "en"),
        _utt(
            "a1",
            "assistant",
            [("it", 3.1, 3.3), ("is", 3.5, 3.7), ("nine", 4.0, 4.6)],
            "en",
            audio=(3.1, 4.7),
        ),
    ),
    actions=(ActionObject(id="k1", name="think", text="asking time", offset_samples=_s(2.0)),),
)


def test_lws_units_phases_and_written_reply():
    units = render_lws(LWS_TL, TOK, reply_text="It is nine o'clock now.", written_budget=5)
    assert [(u["kind"], u["phase"]) for u in units] == [
        ("listen", "early"),
        ("listen", "post"),  # judged at the unit's end: the user ended at 1.9 s
        ("listen", "post"),
        ("speak", None),
        ("speak", None),
    ]
    assert [u["text"] for u in units] == [
        "<unit><|lc|><|/lc|></unit>",
        "<unit><|lc|>asking time<|/lc|></unit>",  # timed at 2.0 s: the end of second 1
        "<unit><|lc|><|/lc|></unit>",
        "<unit><|spk|>it is<|eos|><|rc|>It is nine o'<|/rc|></unit>",
        "<unit><|spk|>nine<|turn_eos|><|eos|><|rc|>clock now.<|/rc|></unit>",
    ]
    assert units[1]["tokens"] == 4 + 3  # four markers + "aski" "ng" " time"
    assert [u["turn_eos"] for u in units] == [False, False, False, False, True]
    assert units[4]["end_s"] == 5.0


def test_lws_long_writing_is_no_reject_and_default_reply():
    units = render_lws(LWS_TL, TOK, reply_text="It is nine o'clock now.", written_budget=4)
    assert "".join(u["written"] or "" for u in units) == "It is nine o'clock now."
    units = render_lws(LWS_TL, TOK)  # the written reply defaults to the spoken text
    assert "".join(u["written"] or "" for u in units) == "it is nine"
    with pytest.raises(RejectError) as e:
        render_lws(LWS_TL, TOK, reply_text="no <|eos|> here")
    assert e.value.code == "marker_in_text"


CT_TL = Timeline(
    session_id="ct",
    duration_samples=_s(2.0),
    lang="zh",
    family="think",
    utterances=(
        _utt("u1", "user", [("去", 0.0, 0.3), ("公司", 0.3, 0.8)], "zh"),
        _utt("a1", "assistant", [("好", 1.2, 1.4), ("的", 1.4, 1.6)], "zh"),
    ),
)
NODES = ["{INTENT}导航", "{ENTITY}公司", "{ACTION}navigate"]  # 6 tokens each


def test_ct_long_chain_truncated_to_whole_leading_nodes():
    frames = render_ct(CT_TL, TOK, NODES)
    # Reply audio 1.2-1.6 s: <BOS> at frame 15, tokens 16-17, <PAD> 18-19, <EOS> 20. S = 15 silence
    # slots, S - 2 = 13: two whole nodes (12 tokens, one per line) fit, the third does not.
    chain = ["{", "INTE", "NT", "}", "导", "航", "\n{", "ENTI", "TY", "}", "公", "司"]
    assert (
        frames
        == ["<SIL>"]
        + ["<BOC>", *chain, "<EOC>"]
        + ["<BOS>", "好", "的", "<PAD>", "<PAD>", "<EOS>"]
        + ["<SIL>"] * 4
    )
    assert len(frames) == 25


def test_ct_short_chain_sits_right_before_the_reply():
    frames = render_ct(CT_TL, TOK, NODES[:1])
    assert frames[:15] == ["<SIL>"] * 7 + ["<BOC>", "{", "INTE", "NT", "}", "导", "航", "<EOC>"]
    assert frames[15] == "<BOS>"
    assert render_ct(CT_TL, TOK)[:15] == ["<SIL>"] * 15


def test_ct_rejects_outrunning_reply_and_markers():
    tl = CT_TL.model_copy(
        update={"utterances": (CT_TL.utterances[0], _utt("a1", "assistant", [("好的好的", 1.2, 1.4)], "zh"))}
    )
    with pytest.raises(RejectError) as e:
        render_ct(tl, TOK)
    assert e.value.code == "text_outruns_audio"
    with pytest.raises(RejectError) as e:
        render_ct(CT_TL, TOK, ["{INTENT}<BOS>"])
    assert e.value.code == "marker_in_text"


# ---- issue 20: units as the paper defines them, hand-made sessions in each language -----------

EN_TL = Timeline(
    session_id="lws-en",
    duration_samples=_s(8.0),
    lang="en",
    family="think",
    utterances=(
        _utt("u0.1", "user", [("what", 1.2, 1.5), ("time", 1.5, 1.9)], "en").model_copy(
            update={"turn_index": 0}
        ),
        _utt("u0.2", "user", [("is", 3.1, 3.3), ("it", 3.3, 3.6)], "en").model_copy(update={"turn_index": 0}),
        _utt(
            "a1",
            "assistant",
            [("it", 4.3, 4.5), ("is", 4.5, 4.8), ("nine", 5.2, 5.9)],
            "en",
            audio=(4.3, 6.4),
        ).model_copy(update={"turn_index": 1}),
    ),
    actions=(
        ActionObject(id="k1", name="think", text="asking", offset_samples=_s(2.0), provenance="cognition:x"),
        ActionObject(
            id="k2", name="think", text="asking time", offset_samples=_s(3.0), provenance="cognition:x"
        ),
        ActionObject(
            id="k3", name="think", text="time query", offset_samples=_s(3.6), provenance="cognition:x"
        ),
        ActionObject(id="k4", name="think", text="done", offset_samples=_s(3.6), provenance="cognition:x"),
        ActionObject(
            id="n1", name="think", text="{INTENT} time", offset_samples=_s(3.6), provenance="chain:x"
        ),
    ),
)


def test_lws_en_phases_pause_post_turn_eos_and_long_writing():
    written = "It is nine o'clock in the evening, time for dinner."
    units = render_lws(EN_TL, TOK, written={1: written}, written_budget=4)
    assert [(u["kind"], u["phase"]) for u in units] == [
        ("listen", "early"),  # user not yet speaking
        ("listen", "effective"),  # speaking, the turn goes on past the unit's end
        ("listen", "effective"),  # a pause inside the user's turn stays effective
        ("listen", "post"),  # the user is done at 3.6 s; the reply starts at 4.3 s
        ("speak", None),
        ("speak", None),
        ("listen", "early"),  # the reply's audio tail: no spoken text, so not a speaking unit
        ("listen", "early"),
    ]
    # A note timed at the end of second t (offset = (t+1) s) is unit t's; chain nodes stay off.
    assert [u["listen_text"] for u in units if u["kind"] == "listen"] == [
        "",
        "asking",
        "asking time",
        "time query done",
        "",
        "",
    ]
    # <|turn_eos|> inside the speak segment of the last unit with spoken text, nowhere else.
    pieces = TOK.pieces(written)
    per_unit = -(-len(pieces) // 2)  # the long answer is spread over the 2 speaking units
    assert per_unit > 4
    assert (
        units[4]["text"] == "<unit><|spk|>it is<|eos|><|rc|>" + "".join(pieces[:per_unit]) + "<|/rc|></unit>"
    )
    assert units[5]["text"] == (
        "<unit><|spk|>nine<|turn_eos|><|eos|><|rc|>" + "".join(pieces[per_unit:]) + "<|/rc|></unit>"
    )
    assert [u["turn_eos"] for u in units] == [False] * 5 + [True, False, False]
    assert "".join(u["written"] or "" for u in units) == written


ZH_TL = Timeline(
    session_id="lws-zh",
    duration_samples=_s(7.0),
    lang="zh",
    family="think",
    utterances=(
        _utt("u0", "user", [("今天", 0.5, 0.9), ("天气", 0.9, 1.4), ("怎么样", 1.4, 1.9)], "zh").model_copy(
            update={"turn_index": 0}
        ),
        _utt(
            "a1",
            "assistant",
            [("今天", 2.3, 2.7), ("晴天", 2.7, 3.2), ("气温", 3.4, 3.9), ("二十度", 4.1, 4.8)],
            "zh",
            audio=(2.3, 4.16),
            cut=4.0,
        ).model_copy(update={"turn_index": 1}),
        _utt("int1", "user", [("等等", 3.5, 3.9), ("明天呢", 4.0, 4.6)], "zh").model_copy(
            update={"turn_index": 1, "kind": "interrupt"}
        ),
        _utt("a2", "assistant", [("明天", 5.3, 5.7), ("下雨", 5.7, 6.2)], "zh", audio=(5.3, 6.4)).model_copy(
            update={"turn_index": 2}
        ),
    ),
    actions=(
        ActionObject(id="k1", name="think", text="在问今天", offset_samples=_s(1.0)),
        ActionObject(id="k2", name="think", text="在问天气", offset_samples=_s(2.0)),
        ActionObject(id="k3", name="think", text="改问明天", offset_samples=_s(5.0)),
    ),
)


def test_lws_zh_cut_turn_barge_in_and_boundaries():
    units = render_lws(ZH_TL, TOK)
    assert [u["text"] for u in units] == [
        "<unit><|lc|>在问今天<|/lc|></unit>",  # effective: the user speaks on past 1.0 s
        "<unit><|lc|>在问天气<|/lc|></unit>",  # post: the user ended at 1.9 s, no reply yet
        # Writing leads: the written reply fills the first speaking unit up to the budget (10).
        "<unit><|spk|>今天晴天<|eos|><|rc|>今天晴天气温<|/rc|></unit>",
        # The cut turn ends on the last word started before the cut (二十度 starts after it).
        "<unit><|spk|>气温<|turn_eos|><|eos|><|rc|><|/rc|></unit>",
        "<unit><|lc|>改问明天<|/lc|></unit>",  # post: the barge-in ended, the assistant stopped
        "<unit><|spk|>明天下雨<|turn_eos|><|eos|><|rc|>明天下雨<|/rc|></unit>",
        "<unit><|lc|><|/lc|></unit>",
    ]
    assert [u["phase"] for u in units] == ["effective", "post", None, None, "post", None, "early"]
    assert sum(u["turn_eos"] for u in units) == 2


def test_ct_chain_per_turn_before_its_own_reply_zh_and_en():
    frames = render_ct(EN_TL, TOK, {0: ["{INTENT} time", "{ENTITY} clock @ctx:e1"]})
    bos = frames.index("<BOS>")
    assert bos == _s(4.3) // (SR * 80 // 1000)
    block = frames[frames.index("<BOC>") : bos]
    assert block == ["<BOC>", *TOK.pieces("{INTENT} time\n{ENTITY} clock @ctx:e1"), "<EOC>"]
    assert "\n{" in block  # nodes one per line: never run together
    # A barge-in is no annotated turn: its reply gets no chain; turn 0's chain sits only before reply 1.
    frames = render_ct(ZH_TL, TOK, {0: ["{INTENT}天气"], 1: ["{INTENT}没有"]})
    boss = [i for i, f in enumerate(frames) if f == "<BOS>"]
    assert len(boss) == 2 and frames.count("<BOC>") == 1
    first = frames[: boss[0]]
    assert first[first.index("<BOC>") :] == ["<BOC>", "{", "INTE", "NT", "}", "天", "气", "<EOC>"]


TWO_TURNS = Timeline(
    session_id="ct-en",
    duration_samples=_s(5.0),
    lang="en",
    family="think",
    utterances=(
        _utt("u0", "user", [("plan", 0.2, 0.5), ("a", 0.5, 0.6), ("trip", 0.6, 1.0)], "en").model_copy(
            update={"turn_index": 0}
        ),
        _utt("a1", "assistant", [("sounds", 2.4, 2.7), ("fun", 2.7, 3.0)], "en").model_copy(
            update={"turn_index": 1}
        ),
        _utt("u2", "user", [("the", 3.2, 3.3), ("sea", 3.3, 3.6)], "en").model_copy(update={"turn_index": 2}),
        _utt("a3", "assistant", [("coast", 4.0, 4.6)], "en").model_copy(update={"turn_index": 3}),
    ),
)


def test_ct_later_turns_never_leak_into_an_earlier_reply():
    chains = {0: ["{ENTITY} trip @ctx:e1"], 2: ["{ENTITY} sea @ctx:e2"]}
    frames = render_ct(TWO_TURNS, TOK, chains)
    boss = [i for i, f in enumerate(frames) if f == "<BOS>"]
    assert boss == [30, 50]  # 2.4 s and 4.0 s at 80 ms
    first, second = frames[: boss[0]], frames[boss[0] : boss[1]]
    assert first[first.index("<BOC>") :] == ["<BOC>", *TOK.pieces(chains[0][0]), "<EOC>"]
    # Reply 1 ends at 3.0 s: <EOS> at frame 38, S = 50 - 39 = 11 slots: the 7-token node fits.
    assert second[second.index("<BOC>") :] == ["<BOC>", *TOK.pieces(chains[2][0]), "<EOC>"]
    assert "sea" not in "".join(first) and "trip" not in "".join(second)
