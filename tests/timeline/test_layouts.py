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
        ("listen", "effective"),
        ("listen", "post"),
        ("speak", None),
        ("speak", None),
    ]
    assert [u["text"] for u in units] == [
        "<unit><|lc|><|/lc|></unit>",
        "<unit><|lc|><|/lc|></unit>",
        "<unit><|lc|>asking time<|/lc|></unit>",
        "<unit><|spk|>it is<|eos|><|rc|>It is nine o'<|/rc|></unit>",
        "<unit><|spk|>nine<|eos|><|rc|>clock now.<|/rc|><|turn_eos|></unit>",
    ]
    assert units[2]["tokens"] == 4 + 3  # four markers + "aski" "ng" " time"
    assert [u["turn_eos"] for u in units] == [False, False, False, False, True]
    assert units[4]["end_s"] == 5.0


def test_lws_reply_outruns_speech_and_default_reply():
    with pytest.raises(RejectError) as e:
        render_lws(LWS_TL, TOK, reply_text="It is nine o'clock now.", written_budget=4)
    assert e.value.code == "reply_outruns_speech"
    units = render_lws(LWS_TL, TOK)  # the written reply defaults to the spoken text
    assert "".join(u["written"] or "" for u in units) == "it is nine"
    with pytest.raises(RejectError):
        render_lws(LWS_TL, TOK, reply_text="no <|eos|> here")


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
    # slots, S - 2 = 13: two whole nodes (12 tokens) fit, the third does not.
    chain = ["{", "INTE", "NT", "}", "导", "航", "{", "ENTI", "TY", "}", "公", "司"]
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
