import pytest

from duplexloom.schemas import RejectError, TimedSpan, Timeline, Utterance
from duplexloom.schemas.tokens import TTS_PAD, VAD_SILENCE
from duplexloom.timeline.actions import render_action, tool_call_json
from duplexloom.timeline.asr import asr_actions
from duplexloom.timeline.clock import ChunkGrid
from duplexloom.timeline.seconds_json import timeline_from_json, timeline_to_json
from duplexloom.timeline.ta4 import anchor_schedule
from duplexloom.timeline.tokenizer import load_tokenizer

G = ChunkGrid()
C = G.chunk_len
TOK = load_tokenizer(None)


def _utt(uid, speaker, words, lang="zh", text=None, cut=None, audio=None):
    spans = tuple(TimedSpan(text=t, start_samples=s, end_samples=e) for t, s, e in words)
    a0, a1 = audio or (spans[0].start_samples, spans[-1].end_samples)
    return Utterance(
        id=uid,
        speaker=speaker,
        lang=lang,
        text=text
        if text is not None
        else ("".join(w for w, _, _ in words) if lang == "zh" else " ".join(w for w, _, _ in words)),
        words=spans,
        audio_start_samples=a0,
        audio_end_samples=a1,
        cut_samples=cut,
    )


def test_anchors_left_aligned_with_pad_and_silence():
    tl = Timeline(
        session_id="a",
        duration_samples=8 * C,
        utterances=(_utt("a1", "assistant", [("你好", C + 5, 5 * C)]),),
    )
    assert anchor_schedule(tl, TOK, G) == [VAD_SILENCE, "你", "好", TTS_PAD, TTS_PAD] + [VAD_SILENCE] * 3


def test_text_outruns_audio_is_rejected_with_counts():
    tl = Timeline(
        session_id="a",
        duration_samples=8 * C,
        utterances=(_utt("a1", "assistant", [("你好吗朋友", 0, 2 * C)]),),
    )
    with pytest.raises(RejectError) as e:
        anchor_schedule(tl, TOK, G)
    assert e.value.code == "text_outruns_audio" and e.value.extra == {"tokens": 5, "audio_chunks": 2}


def test_cut_keeps_words_started_before_the_cut():
    u = _utt("a1", "assistant", [("我们", 0, C), ("出发", C, 2 * C), ("吧", 3 * C, 4 * C)], cut=3 * C)
    tl = Timeline(session_id="a", duration_samples=6 * C, utterances=(u,))
    # 4 tokens, 3 audio chunks after the cut: rejected rather than silently truncated.
    with pytest.raises(RejectError):
        anchor_schedule(tl, TOK, G)
    u2 = _utt("a1", "assistant", [("好", 0, C), ("的", C, 2 * C), ("吧", 3 * C, 4 * C)], cut=3 * C)
    tl2 = Timeline(session_id="a", duration_samples=6 * C, utterances=(u2,))
    assert anchor_schedule(tl2, TOK, G) == ["好", "的", TTS_PAD, VAD_SILENCE, VAD_SILENCE, VAD_SILENCE]
    assert [a.text for a in asr_actions(tl2, TOK, G, "assistant")] == ["好", "的"]


def test_assistant_overlap_rejected():
    tl = Timeline(
        session_id="a",
        duration_samples=8 * C,
        utterances=(
            _utt("a1", "assistant", [("你好", 0, 2 * C)]),
            _utt("a2", "assistant", [("再见", C + 10, 4 * C)]),
        ),
    )
    with pytest.raises(RejectError) as e:
        anchor_schedule(tl, TOK, G)
    assert e.value.code == "assistant_overlap"


def test_user_asr_end_chunk_plus_lag_and_merge():
    words = [("turn", 0, C), ("the", C, C + 100), ("heat", C + 100, 2 * C - 1), ("up", 2 * C - 1, 2 * C + 1)]
    tl = Timeline(
        session_id="a", duration_samples=6 * C, lang="en", utterances=(_utt("u1", "user", words, lang="en"),)
    )
    acts = asr_actions(tl, TOK, G, "user", lag_chunks=2)
    # "turn" ends exactly at the chunk boundary: its last sample is in chunk 0.
    assert [(G.chunk_of(a.offset_samples), a.text) for a in acts] == [(2, "turn"), (3, "the heat"), (4, "up")]
    assert all(a.provenance == "asr_rule" and a.name == "asr" for a in acts)
    assert [G.chunk_of(a.offset_samples) for a in asr_actions(tl, TOK, G, "user", lag_chunks=0)] == [0, 1, 2]


def test_tool_call_rendering_is_compact_and_ordered():
    assert tool_call_json("navigate", {"route_preference": "fastest", "destination": "家"}) == (
        '{"function":"navigate","arguments":{"destination":"家","route_preference":"fastest"}}'
    )
    from duplexloom.schemas import ActionObject

    a = ActionObject(id="b", name="backchannel", offset_samples=0)
    phrases = {render_action(a, lang="en", phrase_rng_seed=f"s{i}") for i in range(40)}
    assert len(phrases) >= 2 and all(p.endswith("<backchannel>") for p in phrases)
    assert render_action(a, lang="zh", phrase_rng_seed="s") == render_action(
        a, lang="zh", phrase_rng_seed="s"
    )


def test_io_round_trip_and_defaults():
    obj = {
        "session_id": "r",
        "duration_s": 1.0,
        "utterances": [
            {
                "id": "u1",
                "speaker": "user",
                "lang": "en",
                "words": [
                    {"text": "hi", "start_s": 0.1, "end_s": 0.3},
                    {"text": "there", "start_s": 0.3, "end_s": 0.6},
                ],
            }
        ],
        "actions": [{"id": "r1", "name": "response", "offset_s": 0.6}],
    }
    tl = timeline_from_json(obj)
    assert tl.lang == "en" and tl.utterances[0].text == "hi there"
    assert tl.utterances[0].audio_start_samples == 1600 and tl.utterances[0].audio_end_samples == 9600
    assert timeline_from_json(timeline_to_json(tl)) == tl
    assert timeline_from_json(tl.model_dump(mode="json")) == tl


def test_asr_lag_past_session_end_pads_chunks():
    from duplexloom.timeline.serialize import serialize
    from duplexloom.timeline.validate import check_chunks

    # The last word ends in the last chunk: its transcript lands 2 chunks after the session end.
    tl = Timeline(
        session_id="pad",
        duration_samples=4 * C,
        lang="zh",
        family="asr_human",
        utterances=(_utt("u1", "user", [("你好", 3 * C + 10, 4 * C)]),),
    )
    chunks = serialize(tl, tokenizer=TOK, asr_sides=("user",))
    assert len(chunks) == 6
    assert chunks[5].action_text == "你好" and chunks[4].action_text == ""
    assert all(c.anchor == VAD_SILENCE and not c.user_words for c in chunks[4:])
    assert check_chunks(tl, chunks, TOK, 10) == []
