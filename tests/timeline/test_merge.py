"""Time-merge on real synthesized audio: normal dialogue, tool-call timing, determinism, rejects."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pydantic import ValidationError

from duplexloom.schemas import RejectError, TimedSpan
from duplexloom.timeline import augment as aug
from duplexloom.timeline.config import TimelineConfig, fixed
from duplexloom.timeline.merge import Clip, SessionPlan, build_session, plan_session
from duplexloom.timeline.timing import check_timing
from tests.timeline.test_merge_fixtures import (
    en_annotation,
    library,
    make_clips,
    request_annotation,
    tool_annotation,
    zh_annotation,
)

PLAIN = TimelineConfig(barge_in_prob=0.0, backchannel_prob=0.0, pause_prob=0.0)


def _build(ann, config=PLAIN, seed=3):
    plan = plan_session(ann, config, seed, library=library())
    return plan, build_session(plan, make_clips(plan), config, seed)


@pytest.mark.parametrize("make", [en_annotation, zh_annotation])
def test_normal_dialogue_two_tracks(make):
    plan, built = _build(make("dialogue"))
    tl = built.timeline
    chunk = PLAIN.chunk_samples
    assert built.user_audio.shape == built.assistant_audio.shape == (tl.duration_samples,)
    assert tl.duration_samples % chunk == 0
    # Turns alternate on the floor and never overlap in a plain dialogue.
    utts = sorted(tl.utterances, key=aug.speech_start)
    assert [u.speaker for u in utts] == [t.role for t in make().turns]
    for a, b in zip(utts, utts[1:], strict=False):
        assert aug.speech_end(a) <= aug.speech_start(b)
    responses = [x for x in tl.actions if x.name == "response"]
    assert len(responses) == sum(t.role == "user" for t in make().turns)
    for r in responses:
        u = next(u for u in tl.utterances if u.id == r.anchor_utterance_id)
        assert r.offset_samples == aug.speech_end(u)
        nxt = [a for a in utts if a.speaker == "assistant" and aug.speech_start(a) > r.offset_samples]
        if nxt:  # the response gap is the one drawn for that reply, to the sample
            drawn = next(p for p in tl.augmentation if p.name == "response_gap_s" and p.target == nxt[0].id)
            assert drawn.distribution.startswith("lognormal") and -0.15 <= drawn.value <= 2.5
            assert aug.speech_start(nxt[0]) - r.offset_samples == PLAIN.samples(drawn.value)
    # Each track carries exactly its clips: the mix reproduces the clip audio at its offset.
    clips = make_clips(plan)
    for u in tl.utterances:
        track = built.user_audio if u.speaker == "user" else built.assistant_audio
        a = clips[u.id].audio
        np.testing.assert_array_equal(track[u.audio_start_samples : u.audio_start_samples + a.shape[0]], a)
    assert check_timing(tl, PLAIN, built.assistant_audio) == []
    # Every drawn parameter is recorded with its distribution.
    names = {p.name for p in tl.augmentation}
    assert {"lead_in_s", "tail_s", "response_gap_s"} <= names
    assert ("inter_turn_gap_s" in names) == (len(make().turns) > 2)
    assert all(p.distribution for p in tl.augmentation)


def test_same_seed_same_bytes_other_seed_differs():
    ann = en_annotation("dialogue", interruptions=("wait, what about the weekend",))
    cfg = TimelineConfig()
    a = [_build(ann, cfg, seed=11)[1] for _ in range(2)]
    assert a[0].timeline.model_dump_json() == a[1].timeline.model_dump_json()
    assert a[0].user_audio.tobytes() == a[1].user_audio.tobytes()
    assert a[0].assistant_audio.tobytes() == a[1].assistant_audio.tobytes()
    b = _build(ann, cfg, seed=12)[1]
    assert b.timeline.model_dump_json() != a[0].timeline.model_dump_json()


def test_plan_is_a_frozen_picklable_record():
    plan = plan_session(en_annotation("pause"), TimelineConfig(), 5, library=library())
    assert pickle.loads(pickle.dumps(plan)) == plan
    assert SessionPlan.model_validate_json(plan.model_dump_json()) == plan
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen assignment
        plan.family = "dialogue"  # type: ignore[misc]
    ids = [u.id for u in plan.utterances_to_speak]
    assert len(ids) == len(set(ids)) and {p.utterance_id for p in plan.placements} == set(ids)
    assert plan.assistant_speaker_id in {s.id for s in library().assistants}
    assert plan.assistant_name in plan.system_prompt


def test_multi_action_tool_calls_at_their_anchors():
    for lang in ("en", "zh"):
        plan, built = _build(tool_annotation(lang))
        tl = built.timeline
        tools = [a for a in tl.actions if a.is_tool_call]
        assert [a.name for a in tools] == ["open_car_setting", "play_media"]
        user = next(u for u in tl.utterances if u.id == tools[0].anchor_utterance_id)
        for a in tools:
            delay = next(p for p in tl.augmentation if p.name == "tool_trigger_delay_s" and p.target == a.id)
            assert 0.0 <= delay.value <= 0.32
            assert a.offset_samples == aug.anchor_end_samples(user, a.anchor) + PLAIN.samples(delay.value)
            assert aug.speech_start(user) < a.offset_samples <= aug.speech_end(user) + PLAIN.samples(0.32)
            assert a.parameters and a.provenance.startswith("annotation")
        assert tools[0].offset_samples < tools[1].offset_samples  # emitted in request order
        assert check_timing(tl, PLAIN, built.assistant_audio) == []


def test_tool_trigger_delay_is_configurable():
    cfg = PLAIN.model_copy(update={"tool_trigger_delay_s": fixed(0.25)})
    _, built = _build(tool_annotation("en"), cfg)
    tl = built.timeline
    for a in (a for a in tl.actions if a.is_tool_call):
        user = next(u for u in tl.utterances if u.id == a.anchor_utterance_id)
        assert a.offset_samples - aug.anchor_end_samples(user, a.anchor) == cfg.samples(0.25)


def test_backchannel_action_request_during_assistant_speech():
    plan, built = _build(request_annotation())
    tl = built.timeline
    req = next(u for u in tl.utterances if u.kind == "request")
    host = next(u for u in tl.utterances if u.id == "a1")
    assert aug.speech_start(host) < aug.speech_start(req) < aug.speech_end(host)
    assert host.cut_samples is None  # the assistant keeps talking
    call = next(a for a in tl.actions if a.name == "play_media")
    assert aug.speech_start(host) < call.offset_samples < aug.speech_end(host)
    assert not any(a.name == "response" and a.anchor_utterance_id == req.id for a in tl.actions)
    assert check_timing(tl, PLAIN, built.assistant_audio) == []


def test_interpret_speaks_the_translation():
    ann = zh_annotation("interpret")
    turns = (ann.turns[0].model_copy(update={"translation": "Hello, please open the window."}), ann.turns[1])
    plan, built = _build(ann.model_copy(update={"turns": turns}))
    a = next(u for u in plan.utterances_to_speak if u.speaker == "assistant")
    assert (a.lang, a.text) == ("en", "Hello, please open the window.")
    assert next(u for u in built.timeline.utterances if u.speaker == "assistant").lang == "en"


def test_rejects_missing_clip_and_unaligned_anchor():
    plan = plan_session(tool_annotation("en"), PLAIN, 3, library=library())
    clips = make_clips(plan)
    with pytest.raises(RejectError) as e:
        build_session(plan, {k: v for k, v in clips.items() if k != "a1"}, PLAIN, 3)
    assert e.value.code == "missing_clip"
    # An aligner that heard other words: the anchor cannot be placed.
    u0 = clips["u0"]
    bad_words = tuple(
        TimedSpan(text="blah", start_samples=w.start_samples, end_samples=w.end_samples)
        for w in u0.utterance.words
    )
    clips["u0"] = Clip(u0.utterance.model_copy(update={"words": bad_words}), u0.audio)
    with pytest.raises(RejectError) as e:
        build_session(plan, clips, PLAIN, 3)
    assert e.value.code == "anchor_not_aligned"


def test_a_clip_holds_its_utterance_on_the_clip_clock_and_exactly_its_audio():
    plan = plan_session(tool_annotation("en"), PLAIN, 3, library=library())
    u0 = make_clips(plan)["u0"]
    with pytest.raises(TypeError, match="ClipUtterance"):
        Clip(u0.utterance.placed_at(0), u0.audio)  # a session-clock utterance
    with pytest.raises(ValueError, match="samples of audio"):
        Clip(u0.utterance, u0.audio[:-1])


def test_plan_rejects():
    with pytest.raises(RejectError) as e:
        plan_session(en_annotation("toolcall"), PLAIN, 1, library=library())
    assert e.value.code == "no_tool_actions"
    with pytest.raises(RejectError) as e:
        plan_session(en_annotation("interrupt", interruptions=()), PLAIN, 1, library=library())
    assert e.value.code == "no_interruption_text"
    with pytest.raises(ValidationError, match="chitchat"):  # the family is decided before planning
        en_annotation("chitchat")
    ann = tool_annotation("en")
    bad = ann.turns[0].actions[0].model_copy(update={"anchor": "close the door"})
    turns = (ann.turns[0].model_copy(update={"actions": (bad,)}),) + ann.turns[1:]
    with pytest.raises(RejectError) as e:
        plan_session(ann.model_copy(update={"turns": turns}), PLAIN, 1, library=library())
    assert e.value.code == "anchor_not_in_text"
