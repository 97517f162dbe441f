"""Cognition on the session clock (timeline/cognition.py): hand-made sessions in each language, expected
offsets derived by hand from the aligned word ends."""

from duplexloom.schemas import TimedSpan, Timeline, Utterance
from duplexloom.schemas.annotation import (
    AnnotatedTurn,
    Annotation,
    CognitionEntry,
    CognitionStream,
    ThinkingNode,
)
from duplexloom.timeline.cognition import think_actions, with_think_actions
from duplexloom.timeline.layouts import render_lws
from duplexloom.timeline.tokenizer import load_tokenizer

SR = 16_000


def _s(x):
    return int(round(x * SR))


def _utt(uid, speaker, words, lang, turn, kind="turn"):
    spans = tuple(TimedSpan(text=t, start_samples=_s(a), end_samples=_s(b)) for t, a, b in words)
    return Utterance(
        id=uid,
        speaker=speaker,
        lang=lang,
        text=("" if lang == "zh" else " ").join(w for w, _, _ in words),
        kind=kind,
        turn_index=turn,
        words=spans,
        audio_start_samples=spans[0].start_samples,
        audio_end_samples=spans[-1].end_samples,
    )


# en: "What time is it in Paris?" said with a pause after "time" (two pieces of turn 0).
EN_TL = Timeline(
    session_id="cog-en",
    duration_samples=_s(7.0),
    lang="en",
    family="think",
    utterances=(
        _utt("u0.1", "user", [("what", 0.4, 0.7), ("time", 0.7, 1.3)], "en", 0),
        _utt("u0.f", "user", [("um", 1.6, 1.9)], "en", 0, kind="filler"),
        _utt(
            "u0.2",
            "user",
            [("is", 2.6, 2.8), ("it", 2.8, 3.0), ("in", 3.0, 3.2), ("paris", 3.2, 3.9)],
            "en",
            0,
        ),
        _utt("a1", "assistant", [("nine", 4.3, 4.9), ("pm", 4.9, 5.5)], "en", 1),
    ),
)
EN_ANN = Annotation(
    seed_id="cog-en",
    lang="en",
    family="think",
    turns=(
        AnnotatedTurn(role="user", text="What time, is it in Paris?"),
        AnnotatedTurn(role="assistant", text="Nine pm."),
    ),
    cognition=(
        CognitionStream(
            turn_index=0,
            entries=(
                CognitionEntry(second=0, text="a time question"),
                CognitionEntry(second=1, text="about time"),
                CognitionEntry(second=2, text="time in paris"),
            ),
            heard_units=(2, 4, 6),
            voice_response="Nine pm.",
            reply_text="It is nine pm in Paris now.",
        ),
    ),
    chains=(
        ThinkingNode(type="INTENT", text="time question", turn_index=0, segment_index=0),
        ThinkingNode(type="ENTITY", text="paris", turn_index=0, segment_index=1, ctx_id="e1"),
    ),
    provenance={"cognition": "offline:cognition.v1", "chains": "offline:chains.v1"},
)


def test_en_entries_at_the_end_of_the_second_their_words_end_and_nodes_at_segment_end():
    res = think_actions(EN_TL, EN_ANN)
    got = [(a.id, a.offset_samples / SR, a.text) for a in res.actions]
    assert got == [
        # 2 units heard: "time" ends at 1.3 s -> end of second 1 (2.0 s); the filler is not a word.
        ("think.c00.000", 2.0, "a time question"),
        # 4 units: "it" ends at 3.0 s -> the end of second 2 is 3.0 s itself (a half-open span).
        ("think.c00.001", 3.0, "about time"),
        # 6 units: "paris" ends at 3.9 s -> 4.0 s.
        ("think.c00.002", 4.0, "time in paris"),
        # Nodes at the end of their segment: clause 0 "What time," ends at 1.3 s, clause 1 at 3.9 s.
        ("think.n00.000", 1.3, "{INTENT} time question"),
        ("think.n00.001", 3.9, "{ENTITY} paris @ctx:e1"),
    ]
    assert res.omitted == {}
    assert all(a.provenance.startswith(("cognition:", "chain:")) for a in res.actions)
    # Never before the words used: each offset is at or after the aligned end of its last unit.
    ends = {"think.c00.000": 1.3, "think.c00.001": 3.0, "think.c00.002": 3.9}
    assert all(a.offset_samples >= _s(ends[a.id]) for a in res.actions if a.id in ends)


def test_en_lws_listening_units_carry_the_same_text():
    tl = with_think_actions(EN_TL, EN_ANN, ("think",), ("cognition", "chains"))
    units = render_lws(tl, load_tokenizer(None))
    assert [u["listen_text"] for u in units[:4]] == ["", "a time question", "about time", "time in paris"]
    assert [u["phase"] for u in units[:4]] == ["effective", "effective", "effective", "post"]
    # Only the configured families get think actions; other timelines come back unchanged.
    assert with_think_actions(EN_TL, EN_ANN, ("dialogue",), ("cognition",)) is EN_TL
    only = with_think_actions(EN_TL, EN_ANN, ("think",), ("chains",))
    assert {a.id[:7] for a in only.actions} == {"think.n"}


# zh: 今天北京天气怎么样 aligned two characters a word; the annotation's turn has one unit more
# (今天北京的天气怎么样, 10 units for 9 aligned ones), so the unit counts are scaled.
ZH_TL = Timeline(
    session_id="cog-zh",
    duration_samples=_s(5.0),
    lang="zh",
    family="think",
    utterances=(
        _utt(
            "u0",
            "user",
            [("今天", 0.2, 0.7), ("北京", 0.7, 1.1), ("天气", 1.1, 1.8), ("怎么样", 1.8, 2.5)],
            "zh",
            0,
        ),
        _utt("a1", "assistant", [("晴天", 2.9, 3.6)], "zh", 1),
    ),
)


def test_zh_entries_scaled_and_monotone_and_missing_turn_counted():
    ann = Annotation(
        seed_id="cog-zh",
        lang="zh",
        family="think",
        turns=(
            AnnotatedTurn(role="user", text="今天北京的天气怎么样？"),
            AnnotatedTurn(role="assistant", text="晴天。"),
        ),
        cognition=(
            CognitionStream(
                turn_index=0,
                entries=(
                    CognitionEntry(second=0, text="听到：今天北京"),
                    CognitionEntry(second=1, text=""),  # an empty entry makes no action
                    CognitionEntry(second=2, text="在问天气"),
                ),
                heard_units=(4, 4, 10),
                voice_response="晴天。",
                reply_text="今天北京晴天，气温二十度。",
            ),
            CognitionStream(
                turn_index=2,  # a turn the timeline does not have
                entries=(CognitionEntry(second=0, text="x"),),
                heard_units=(1,),
                voice_response="x",
                reply_text="x",
            ),
        ),
    )
    res = think_actions(ZH_TL, ann)
    # 4 of 10 text units -> ceil(4 * 9 / 10) = the 4th aligned unit ("京", 1.1 s) -> 2.0 s; all 10 ->
    # the 9th ("样", 2.5 s) -> 3.0 s.
    assert [(a.offset_samples / SR, a.text) for a in res.actions] == [
        (2.0, "听到：今天北京"),
        (3.0, "在问天气"),
    ]
    assert res.omitted == {"cognition_turn_not_on_timeline": 1}
