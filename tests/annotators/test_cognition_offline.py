"""The offline cognition and chain generators (issue 20): golden outputs for a hand-made dialogue in each
language, their causality on every bundled seed, and the chain causality reject."""

import json

import pytest

from duplexloom.annotators import AnnotatorConfig, chains, cognition
from duplexloom.pipelines.run import DEFAULT_SEEDS
from duplexloom.schemas import RejectError
from duplexloom.schemas.annotation import AnnotatedTurn, ThinkingNode

CFG = AnnotatorConfig()
EN = (
    AnnotatedTurn(role="user", text="I want to plan a short trip this weekend."),
    AnnotatedTurn(
        role="assistant",
        text="Sounds fun. Do you prefer the mountains or the sea? I know good places for both of them.",
    ),
    AnnotatedTurn(role="user", text="The sea, what about the short trip budget?"),
    AnnotatedTurn(role="assistant", text="About two hundred dollars."),
)
ZH = (
    AnnotatedTurn(role="user", text="帮我查一下明天北京的天气，要带伞吗？"),
    AnnotatedTurn(role="assistant", text="明天北京有小雨，最高气温十八度，最低十二度，建议出门带伞。"),
    AnnotatedTurn(role="user", text="那北京后天呢？"),
    AnnotatedTurn(role="assistant", text="后天转晴。"),
)


def test_en_offline_think_golden():
    turns, streams = cognition.offline_think(EN, "en", CFG)
    s0, s2 = streams
    # 9 words at 2.5 words/s: 4 seconds; units heard by the end of each second.
    assert (s0.turn_index, s0.heard_units) == (0, (3, 5, 8, 9))
    assert [e.text for e in s0.entries] == [
        "...",  # "I want to": nothing to confirm yet
        "heard: plan",
        "heard: plan, short, trip",
        "got it, telling me plan, short, trip, weekend; answering",
    ]
    # The question shows at once ("what" in second 0); no entry names a word heard later.
    assert [e.text for e in s2.entries] == [
        "a question on sea",
        "a question on sea",
        "a question on sea, short, trip, budget",
        "got it, a question on sea, short, trip, budget; answering",
    ]
    # Speech vs writing: a long reply is spoken as its first sentence, written in full.
    assert s0.voice_response == "Sounds fun." and s0.reply_text == EN[1].text
    assert turns[1].text == "Sounds fun." and turns[3].text == EN[3].text == s2.voice_response


def test_zh_offline_think_golden():
    turns, (s0, s2) = cognition.offline_think(ZH, "zh", CFG)
    assert s0.heard_units == (4, 8, 12, 16)
    assert [e.text for e in s0.entries] == [
        "想让我帮我查一",  # a request shows at once (帮)
        "想让我帮我查一下明天北",
        "想让我帮我查一下明天北京的天气",
        "听完了，在问一下明天北京的天气要带伞吗，准备回答",  # within the 24-character budget
    ]
    assert [e.text for e in s2.entries] == ["听到：那北京后", "听完了，在问那北京后天呢，准备回答"]
    assert all(len(e.text) <= CFG.cognition_char_budget_zh for e in s0.entries + s2.entries)
    # One sentence of over 20 characters: the first clause is spoken, the whole answer written.
    assert s0.voice_response == "明天北京有小雨" and turns[1].text == "明天北京有小雨"
    assert s0.reply_text == ZH[1].text


def test_offline_chains_golden_with_ctx_binding():
    en = [chains.render(n) for n in chains.offline_chain(EN, "en")]
    assert en == [
        "{ENTITY} short trip @ctx:e1",
        "{ENTITY} weekend @ctx:e2",
        "{INTENT} statement",
        "{ACTION} reply",
        "{ENTITY} sea @ctx:e3",
        "{LOGIC} same as before: short trip @ctx:e1",  # refers back, never forward
        "{INTENT} question",
        "{ACTION} answer",
    ]
    zh = chains.offline_chain(ZH, "zh")
    assert [(n.turn_index, n.segment_index, chains.render(n)) for n in zh] == [
        (0, 0, "{ENTITY} 明天北京 @ctx:e1"),
        (0, 0, "{ENTITY} 天气 @ctx:e2"),
        (0, 0, "{INTENT} 请求"),
        (0, 1, "{ENTITY} 带伞 @ctx:e3"),
        (0, 1, "{ACTION} 照办"),
        (2, 0, "{ENTITY} 那北京后 @ctx:e4"),
        (2, 0, "{INTENT} 提问"),
        (2, 0, "{ACTION} 作答"),
    ]


def test_chain_check_rejects_a_node_using_a_later_word():
    early = ThinkingNode(type="ENTITY", text="sea", turn_index=0, segment_index=0, ctx_id="e1")
    with pytest.raises(RejectError) as e:
        chains.check([early], EN, "en")  # "sea" is first said by the assistant, after turn 0
    assert e.value.code == "chain_not_causal"
    chains.check([early.model_copy(update={"turn_index": 2})], EN, "en")
    later_clause = ThinkingNode(type="INTENT", text="带伞", turn_index=0, segment_index=0)
    with pytest.raises(RejectError) as e:
        chains.check([later_clause], ZH, "zh")  # 带伞 is in clause 1
    assert e.value.code == "chain_not_causal"


def test_every_bundled_seed_gets_causal_cognition_and_chains():
    n = 0
    for line in open(DEFAULT_SEEDS, encoding="utf-8"):
        seed = json.loads(line)
        turns = [AnnotatedTurn(role=t["role"], text=t["text"]) for t in seed["turns"]]
        if not any(t.role == "assistant" for t in turns):
            continue
        lang = seed["lang"]
        rate = CFG.speech_rate_zh_chars_per_s if lang == "zh" else CFG.speech_rate_en_words_per_s
        new, streams = cognition.offline_think(turns, lang, CFG)  # raises on any failed check
        assert streams and all(s.voice_response.strip() for s in streams)
        for s in streams:
            pieces = cognition.segment_per_second(turns[s.turn_index].text, lang, rate)
            assert len(s.heard_units) == len(s.entries) == len(pieces)
        nodes = chains.offline_chain(new, lang)
        chains.check(nodes, new, lang)
        assert {n.turn_index for n in nodes} <= {i for i, t in enumerate(new) if t.role == "user"}
        n += 1
    assert n >= 30


def _timeline(lang, words, reply_words, turn_text):
    from duplexloom.schemas import TimedSpan, Timeline, Utterance

    sr = 16_000

    def utt(uid, speaker, ws, turn):
        spans = tuple(TimedSpan(text=t, start_samples=int(a * sr), end_samples=int(b * sr)) for t, a, b in ws)
        return Utterance(
            id=uid,
            speaker=speaker,
            lang=lang,
            text=turn_text if speaker == "user" else " ".join(t for t, _, _ in ws),
            turn_index=turn,
            words=spans,
            audio_start_samples=spans[0].start_samples,
            audio_end_samples=spans[-1].end_samples,
        )

    return Timeline(
        session_id="clock",
        duration_samples=6 * sr,
        lang=lang,
        family="think",
        utterances=(utt("u0", "user", words, 0), utt("a1", "assistant", reply_words, 1)),
    )


def test_offline_notes_are_recut_at_the_seconds_the_user_really_spoke():
    from duplexloom.schemas.annotation import Annotation
    from duplexloom.timeline.cognition import think_actions

    turns = (
        AnnotatedTurn(role="user", text="What is the weather like in Paris tomorrow?"),
        AnnotatedTurn(role="assistant", text="Sunny."),
    )
    _, streams = cognition.offline_think(turns, "en", CFG)
    ann = Annotation(
        seed_id="clock",
        lang="en",
        family="think",
        turns=turns,
        cognition=streams,
        provenance={"cognition": cognition.OFFLINE_PROV},
    )
    # Spoken slowly from 0.6 s: "what is the" end in second 1, "weather like" in 2, "in paris" in
    # 3, "tomorrow" in 4 (the estimate, 2.5 words/s, gave 4 seconds from 0 s).
    words = [
        ("what", 0.6, 1.1),
        ("is", 1.1, 1.4),
        ("the", 1.4, 1.9),
        ("weather", 2.0, 2.6),
        ("like", 2.6, 2.9),
        ("in", 3.0, 3.2),
        ("paris", 3.2, 3.9),
        ("tomorrow", 4.1, 4.8),
    ]
    tl = _timeline("en", words, [("sunny", 5.1, 5.6)], turns[0].text)
    (st,) = cognition.on_session_clock(ann, tl, CFG).cognition
    assert (st.start_second, st.heard_units) == (1, (3, 5, 7, 8))
    assert [e.text for e in st.entries] == [
        "a question",  # "what is the": the intent shows, no content word yet
        "a question on weather, like",
        "a question on weather, like, paris",
        "got it, a question on weather, like, paris, tomorrow; answering",
    ]
    res = think_actions(tl, ann.model_copy(update={"cognition": (st,)}), ("cognition",))
    # One note per second the user speaks, each at that second's end, none before its words.
    assert [a.offset_samples // 16_000 for a in res.actions] == [2, 3, 4, 5]
    assert "paris" not in res.actions[1].text and "tomorrow" not in res.actions[2].text
    # An LLM stream is kept as annotated.
    llm = ann.model_copy(update={"provenance": {"cognition": "llm:m:cognition.v1"}})
    assert cognition.on_session_clock(llm, tl, CFG) is llm


def test_zh_offline_notes_recut_keep_the_question_whole():
    from duplexloom.schemas.annotation import Annotation
    from duplexloom.timeline.cognition import think_actions

    turns = (
        AnnotatedTurn(role="user", text="月亮离地球有多远？"),
        AnnotatedTurn(role="assistant", text="大约三十八万公里。"),
    )
    _, streams = cognition.offline_think(turns, "zh", CFG)
    ann = Annotation(
        seed_id="clock",
        lang="zh",
        family="think",
        turns=turns,
        cognition=streams,
        provenance={"cognition": cognition.OFFLINE_PROV},
    )
    ends = [0.5, 0.8, 1.1, 1.4, 1.7, 1.9, 2.2, 2.6]
    words = [(c, e - 0.2, e) for c, e in zip("月亮离地球有多远", ends, strict=True)]
    tl = _timeline("zh", words, [("大约", 3.0, 3.6)], turns[0].text)
    (st,) = cognition.on_session_clock(ann, tl, CFG).cognition
    assert (st.start_second, st.heard_units) == (0, (2, 6, 8))
    # 多 and 远 fall in different seconds of the estimate's cut; joined without a space, 多远 and the
    # final ？ still make the last note a question.
    assert [e.text for e in st.entries] == [
        "听到：月亮",
        "听到：月亮离地球有",
        "听完了，在问月亮离地球有多远，准备回答",
    ]
    res = think_actions(tl, ann.model_copy(update={"cognition": (st,)}), ("cognition",))
    assert [a.offset_samples // 16_000 for a in res.actions] == [1, 2, 3]
