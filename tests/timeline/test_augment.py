"""Interrupt, backchannel and pause augmentation on real synthesized audio, plus the text helpers."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.schemas import TimedSpan, Utterance
from duplexloom.timeline import augment as aug
from duplexloom.timeline.config import TimelineConfig, fixed, uniform
from duplexloom.timeline.merge import build_session, plan_session
from duplexloom.timeline.timing import check_timing
from tests.timeline.test_merge_fixtures import (
    en_annotation,
    library,
    make_clips,
    tool_annotation,
    zh_annotation,
)


def _build(ann, config, seed):
    plan = plan_session(ann, config, seed, library=library())
    return plan, build_session(plan, make_clips(plan), config, seed)


def _by_kind(tl, kind):
    return [u for u in tl.utterances if u.kind == kind]


def _stop_after_label(tl, barge, cfg):
    """(host utterance, <interrupt> label, drawn stop delay) of one barge-in."""
    label = next(a for a in tl.actions if a.name == "interrupt" and a.anchor_utterance_id == barge.id)
    host = next(
        u
        for u in tl.utterances
        if u.cut_samples is not None
        and aug.speech_start(u) <= aug.speech_start(barge)
        and u.cut_samples >= aug.speech_start(barge)
    )
    drawn = next(p for p in tl.augmentation if p.name == "stop_delay_s" and p.target == barge.id)
    return host, label, drawn


@pytest.mark.parametrize("make", [en_annotation, zh_annotation])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_interrupt_cuts_the_assistant_after_the_cue(make, seed):
    cfg = TimelineConfig()
    plan, built = _build(make("interrupt"), cfg, seed)
    tl = built.timeline
    chunk = cfg.chunk_samples
    barges = _by_kind(tl, "interrupt")
    assert barges
    for barge in barges:
        host, label, drawn = _stop_after_label(tl, barge, cfg)
        # <interrupt> sits at the end of the semantic anchor (after the acknowledgement) ...
        assert label.offset_samples == aug.anchor_end_samples(barge, label.anchor)
        assert len(aug.norm_units(label.anchor, barge.lang)) > len(
            aug.norm_units(aug.ACK_PHRASES[barge.lang][0], barge.lang)
        ) or not aug.starts_with_ack(barge.text, barge.lang)
        # ... the assistant speaks through the label's chunk and stops the drawn delay after it starts
        c = label.offset_samples // chunk
        assert 0.16 <= drawn.value <= 0.48
        assert host.cut_samples == c * chunk + cfg.samples(drawn.value)
        assert host.cut_samples >= (c + 1) * chunk
        assert np.any(built.assistant_audio[c * chunk : (c + 1) * chunk])
        assert host.audio_end_samples == host.cut_samples
        # ... keeps only the words whose audio started before the stop ...
        assert host.words and all(w.start_samples < host.cut_samples for w in host.words)
        full = next(u for u in plan.utterances_to_speak if u.id == host.id)
        assert len(aug.norm_units(host.text, host.lang)) <= len(aug.norm_units(full.text, full.lang))
        clip = make_clips(plan)[host.id].audio
        assert host.audio_end_samples - host.audio_start_samples < clip.shape[0]  # the rest is never heard
        assert (
            label.offset_samples - cfg.samples(1.0)
            <= host.cut_samples
            <= label.offset_samples + cfg.samples(2.0)
        )
        # ... and answers the interruption once it is over: <response> at its end, then the reply.
        resp = next(a for a in tl.actions if a.name == "response" and a.anchor_utterance_id == barge.id)
        assert resp.offset_samples == aug.speech_end(barge)
        reply = next(u for u in tl.utterances if u.id == "r" + barge.id[3:])
        assert reply.speaker == "assistant" and reply.text
        assert aug.speech_start(reply) >= aug.speech_end(barge) - cfg.samples(0.15)
        assert not np.any(built.assistant_audio[host.cut_samples : reply.audio_start_samples])
    assert check_timing(tl, cfg, built.assistant_audio) == []


def test_stop_delay_is_configurable_and_recorded():
    cfg = TimelineConfig(stop_delay_s=uniform(0.3, 0.5))
    _, built = _build(en_annotation("interrupt"), cfg, 4)
    tl = built.timeline
    barge = _by_kind(tl, "interrupt")[0]
    host, label, drawn = _stop_after_label(tl, barge, cfg)
    assert drawn.distribution == "uniform(0.3, 0.5)" and 0.3 <= drawn.value <= 0.5
    chunk = cfg.chunk_samples
    assert host.cut_samples - label.offset_samples // chunk * chunk == cfg.samples(drawn.value)


def test_ambiguous_ack_is_backchannel_here_and_interruption_there():
    ack = aug.ACK_PHRASES["en"][0]
    cfg = TimelineConfig(ambiguous_ack_prob=1.0)
    _, bc = _build(en_annotation("backchannel"), cfg, 5)
    feedback = _by_kind(bc.timeline, "backchannel")
    assert feedback and all(u.text == ack for u in feedback)
    assert {a.name for a in bc.timeline.actions} >= {"backchannel"} and not any(
        u.cut_samples for u in bc.timeline.utterances
    )
    _, it = _build(en_annotation("interrupt"), cfg, 5)
    barge = _by_kind(it.timeline, "interrupt")[0]
    assert barge.text.lower().startswith(ack)
    label = next(a for a in it.timeline.actions if a.name == "interrupt")
    # "you are right" alone never triggers: the anchor runs on to content words of the new thought.
    assert label.anchor.startswith(ack) and len(label.anchor.split()) >= len(ack.split()) + 2
    assert check_timing(it.timeline, cfg, it.assistant_audio) == []


@pytest.mark.parametrize("make", [en_annotation, zh_annotation])
def test_backchannel_over_assistant_speech(make):
    cfg = TimelineConfig()
    _, built = _build(make("backchannel"), cfg, 6)
    tl = built.timeline
    feedback = _by_kind(tl, "backchannel")
    assert feedback
    for fb in feedback:
        host = next(u for u in tl.utterances if u.speaker == "assistant" and u.turn_index == fb.turn_index)
        assert host.cut_samples is None
        start = aug.speech_start(fb)
        # placed after a word boundary of the host (plus the drawn 0-0.2 s gap), host still speaking
        ends = [w.end_samples for w in host.words]
        assert any(0 <= start - e <= cfg.samples(0.2) for e in ends)
        assert aug.speech_start(host) < start < aug.speech_end(host)
        label = next(a for a in tl.actions if a.name == "backchannel" and a.anchor_utterance_id == fb.id)
        assert label.offset_samples == aug.speech_end(fb)
    assert not any(a.name == "response" and a.anchor_utterance_id.startswith("bc") for a in tl.actions)
    assert check_timing(tl, cfg, built.assistant_audio) == []


@pytest.mark.parametrize("make", [en_annotation, zh_annotation])
@pytest.mark.parametrize("filler_prob", [0.0, 1.0])
def test_pause_splits_a_user_turn(make, filler_prob):
    cfg = TimelineConfig(filler_prob=filler_prob, pause_s=uniform(0.5, 2.0))
    plan, built = _build(make("pause"), cfg, 7)
    tl = built.timeline
    pieces = [u for u in tl.utterances if u.speaker == "user" and "." in u.id and u.kind == "turn"]
    assert len(pieces) >= 2
    first = next(u for u in pieces if u.id.endswith(".1"))
    second = next(u for u in pieces if u.id == first.id[:-1] + "2")
    pause = next(p for p in tl.augmentation if p.name == "pause_s" and p.target == first.id[:-2])
    assert 0.5 <= pause.value <= 2.0
    fillers = [u for u in _by_kind(tl, "filler") if u.turn_index == first.turn_index]
    assert len(fillers) == int(filler_prob)
    filler_len = sum(aug.speech_end(f) - aug.speech_start(f) for f in fillers)
    silence = aug.speech_start(second) - aug.speech_end(first) - filler_len
    assert abs(silence - cfg.samples(pause.value)) <= 2  # rounding of the pre/post split
    # No label during the pause, the response only at the real end.
    resp = [a for a in tl.actions if a.name == "response"]
    assert not any(a.anchor_utterance_id in (first.id, *(f.id for f in fillers)) for a in resp)
    assert any(a.anchor_utterance_id == second.id for a in resp)
    # The assistant stays silent through the pause.
    a0, a1 = aug.speech_end(first), aug.speech_start(second)
    assert not np.any(built.assistant_audio[a0:a1])
    # Piece texts come from the turn text.
    turn = plan_session(make("pause"), cfg, 7, library=library())
    assert first.text and second.text and turn
    assert check_timing(tl, cfg, built.assistant_audio) == []


def test_pause_never_splits_a_tool_anchor():
    cfg = TimelineConfig(pause_prob=1.0, barge_in_prob=0.0, backchannel_prob=0.0)
    for seed in range(6):
        plan = plan_session(tool_annotation("en", family="pause"), cfg, seed, library=library())
        for a in plan.actions:
            holder = plan.utterance(a.utterance_id)
            assert aug.anchor_in_text(holder.text, a.anchor, holder.lang) is not None


def test_barge_in_probability_per_assistant_turn():
    cfg = TimelineConfig(backchannel_prob=0.0, pause_prob=0.0)
    hits_first = 0
    n = 300
    for i in range(n):
        plan = plan_session(en_annotation("dialogue", seed_id=f"s{i}"), cfg, 0, library=library())
        coins = [p for p in plan.augmentation if p.name == "barge_in"]
        assert coins[0].distribution == "bernoulli(0.5)"
        hits_first += coins[0].value
        # the first hit ends the seed's turns at that assistant turn; the assistant answers it
        if coins[0].value:
            ids = [u.id for u in plan.utterances_to_speak]
            assert ids[:4] == ["u0", "a1", "int1", "r1"]
            assert all(i.startswith(("int1", "r1")) for i in ids[2:])
    assert 0.4 < hits_first / n < 0.6


def test_split_candidates_and_interrupt_anchor():
    text = "Could you open the window, and then play some jazz?"
    assert aug.split_candidates(text, "en") == [5]  # the clause boundary after "window,"
    # "window and then" may not be split: the clause boundary is dropped, a mid-turn boundary remains
    other = aug.split_candidates(text, "en", forbidden=[(4, 7)])
    assert other and not set(other) & {5, 6}
    assert aug.split_text(text, "en", 5) == ("Could you open the window,", "and then play some jazz?")
    zh = "你好，请帮我打开车窗。"
    assert aug.split_candidates(zh, "zh") == [2]
    # SPEC 8: the anchor is where the words show a new thought, never the acknowledgement alone
    assert (
        aug.interrupt_anchor("You are right, but the schedule is tight", "en")
        == "you are right but the schedule is tight"
    )
    assert aug.interrupt_anchor("Wait, what about tomorrow", "en") == "wait what about tomorrow"
    assert aug.interrupt_anchor("Actually, can we go to the beach instead?", "en") == (
        "actually can we go to the beach"
    )
    assert aug.interrupt_anchor("你说得对，但是时间太紧了", "zh") == "你说得对但是时间太"
    assert aug.interrupt_anchor("等一下，我想先去加油站", "zh") == "等一下我想先去加油"
    assert aug.interrupt_anchor("you are right", "en") == "you are right"


def test_cut_utterance_and_anchor_lookup():
    words = tuple(
        TimedSpan(text=w, start_samples=1000 * i, end_samples=1000 * i + 800)
        for i, w in enumerate(["Turn", "the", "heat", "up,", "please"])
    )
    u = Utterance(
        id="a",
        speaker="assistant",
        lang="en",
        text="Turn the heat up, please",
        words=words,
        audio_end_samples=5000,
    )
    assert aug.anchor_end_samples(u, "the HEAT up") == 3800
    cut = aug.cut_utterance(u, 2500)
    assert cut.text == "Turn the heat" and cut.cut_samples == 2500 and cut.audio_end_samples == 2500
    assert cut.words[-1].end_samples == 2500
    zh = Utterance(
        id="z",
        speaker="user",
        lang="zh",
        text="打开车窗",
        words=(
            TimedSpan(text="打开", start_samples=0, end_samples=900),
            TimedSpan(text="车窗", start_samples=900, end_samples=2000),
        ),
    )
    assert aug.anchor_end_samples(zh, "打开车") == 2000  # characters inside a word: the word's end
    audio = np.ones(1000, np.float32)
    faded = aug.cut_audio(audio, 600, 100)
    assert faded.shape == (600,) and faded[-1] == 0.0 and faded[499] == 1.0


def test_fixed_distribution_records():
    cfg = TimelineConfig(pause_s=fixed(1.0))
    plan = plan_session(en_annotation("pause"), cfg, 1, library=library())
    p = next(p for p in plan.augmentation if p.name == "pause_s")
    assert (p.value, p.distribution) == (1.0, "fixed(1)")
