"""Validators catch each broken acceptance window; sessions generated for every family pass them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from duplexloom.schemas import RejectError
from duplexloom.timeline import augment as aug
from duplexloom.timeline.config import FAMILIES, TimelineConfig
from duplexloom.timeline.merge import build_session, plan_session
from duplexloom.timeline.timing import STATS, check_timing, family_histograms, histograms, timing_stats
from tests.timeline.test_merge_fixtures import (
    en_annotation,
    library,
    make_clips,
    request_annotation,
    tool_annotation,
)

CFG = TimelineConfig()


def _built(ann, seed=1, cfg=CFG):
    plan = plan_session(ann, cfg, seed, library=library())
    return build_session(plan, make_clips(plan), cfg, seed)


def _replace_utt(tl, uid, **upd):
    return tl.model_copy(
        update={"utterances": tuple(u.model_copy(update=upd) if u.id == uid else u for u in tl.utterances)}
    )


def _shift(u, d):
    words = tuple(
        w.model_copy(update={"start_samples": w.start_samples + d, "end_samples": w.end_samples + d})
        for w in u.words
    )
    return u.model_copy(
        update={
            "words": words,
            "audio_start_samples": u.audio_start_samples + d,
            "audio_end_samples": u.audio_end_samples + d,
        }
    )


def _codes(tl, audio=None):
    return {v.code for v in check_timing(tl, CFG, audio)}


def test_early_response_and_leaking_audio_are_caught():
    b = _built(
        en_annotation("dialogue"), cfg=TimelineConfig(barge_in_prob=0, backchannel_prob=0, pause_prob=0)
    )
    tl = b.timeline
    assert _codes(tl, b.assistant_audio) == set()
    a1 = next(u for u in tl.utterances if u.id == "a1")
    resp = next(a for a in tl.actions if a.name == "response" and a.anchor_utterance_id == "u0")
    early = _shift(
        a1, resp.offset_samples - aug.speech_start(a1) - CFG.samples(0.5)
    )  # 0.5 s before the user end
    tl2 = tl.model_copy(update={"utterances": tuple(early if u.id == "a1" else u for u in tl.utterances)})
    assert "early_response" in _codes(tl2)
    # A starting assistant 0.1 s before the end is inside the benchmark's 0.2 s tolerance.
    ok = _shift(a1, resp.offset_samples - aug.speech_start(a1) - CFG.samples(0.1))
    assert "early_response" not in _codes(
        tl.model_copy(update={"utterances": tuple(ok if u.id == "a1" else u for u in tl.utterances)})
    )
    leak = b.assistant_audio.copy()
    leak[: CFG.chunk_samples] = 0.05  # speech in the first chunk, where the anchor is <vad_silence>
    assert "assistant_not_silent" in _codes(tl, leak)


def test_interrupt_violations_are_caught():
    b = _built(en_annotation("interrupt"), seed=2)
    tl = b.timeline
    assert _codes(tl, b.assistant_audio) == set()
    host = next(u for u in tl.utterances if u.cut_samples is not None)
    barge = next(u for u in tl.utterances if u.kind == "interrupt")
    late = aug.speech_start(barge) + CFG.samples(0.9)  # beyond the configured 0.64 s
    assert "interrupt_stop_delay" in _codes(
        _replace_utt(tl, host.id, cut_samples=late, audio_end_samples=late)
    )
    label = next(a for a in tl.actions if a.name == "interrupt")
    moved = label.model_copy(update={"offset_samples": host.cut_samples + CFG.samples(1.5)})
    tl3 = tl.model_copy(update={"actions": tuple(moved if a.id == label.id else a for a in tl.actions)})
    assert "interrupt_window" in _codes(tl3)
    assert "interrupt_no_stop" in _codes(_replace_utt(tl, host.id, cut_samples=None))


def test_backchannel_and_tool_violations_are_caught():
    b = _built(en_annotation("backchannel"), seed=3)
    tl = b.timeline
    assert _codes(tl, b.assistant_audio) == set()
    label = next(a for a in tl.actions if a.name == "backchannel")
    fb = next(u for u in tl.utterances if u.id == label.anchor_utterance_id)
    late = label.model_copy(update={"offset_samples": aug.speech_end(fb) + CFG.samples(2.5)})
    assert "backchannel_window" in _codes(
        tl.model_copy(update={"actions": tuple(late if a.id == label.id else a for a in tl.actions)})
    )
    t = _built(tool_annotation("en"), seed=3).timeline
    call = next(a for a in t.actions if a.is_tool_call)
    early = call.model_copy(update={"offset_samples": max(0, call.offset_samples - CFG.samples(1.6))})
    assert "tool_early" in _codes(
        t.model_copy(update={"actions": tuple(early if a.id == call.id else a for a in t.actions)})
    )


def _annotation_for(family: str, i: int):
    if family == "toolcall":
        return tool_annotation("en", family) if i % 2 else request_annotation()
    ann = en_annotation(family, seed_id=f"{family}-{i}")
    if family == "interpret":
        turns = tuple(
            t.model_copy(update={"translation": "你好，明天天气怎么样？"}) if t.role == "user" else t
            for t in ann.turns
        )
        ann = ann.model_copy(update={"turns": turns})
    return ann


@pytest.mark.slow
def test_every_family_passes_the_validators_and_histograms_cover_them():
    timelines = []
    for fam in FAMILIES:
        for i in range(4):
            try:
                b = _built(_annotation_for(fam, i).model_copy(update={"seed_id": f"{fam}-{i}"}), seed=i)
            except RejectError as e:  # a short host is a legitimate reject, anything else is a bug
                assert e.code == "interrupt_host_too_short", e
                continue
            assert check_timing(b.timeline, CFG, b.assistant_audio) == [], fam
            assert b.timeline.family == fam
            timelines.append(b.timeline)
    hist = family_histograms(timelines)
    assert set(hist) == set(FAMILIES)
    assert hist["interrupt"]["stop_delay_s"]["n"] >= 3
    assert hist["backchannel"]["backchannel_label_delay_s"]["n"] >= 4
    assert hist["toolcall"]["tool_trigger_delay_s"]["n"] >= 4
    gaps = hist["dialogue"]["response_gap_s"]
    assert -0.15 <= gaps["min"] < gaps["max"] <= 2.5  # drawn per turn, never one constant
    assert 0.0 < gaps["p50"] < 0.8
    json.dumps(hist)  # JSON-ready for the run summary


def test_timing_stats_and_histograms():
    tl = _built(en_annotation("interrupt"), seed=2).timeline
    st = timing_stats(tl)
    assert set(st) == set(STATS)
    drawn = [p.value for p in tl.augmentation if p.name == "stop_delay_s"]
    assert st["stop_delay_s"] == [pytest.approx(v, abs=1 / 16000) for v in drawn[: len(st["stop_delay_s"])]]
    assert st["stop_delay_s"] and all(0.16 <= v <= 0.48 for v in st["stop_delay_s"])
    h = histograms([0.1, 0.2, 0.2, 0.9, 5.0], bins=[0.0, 0.5, 1.0])
    assert h["counts"] == [3, 1] and h["above"] == 1 and h["n"] == 5
    assert h["p50"] == pytest.approx(0.2)
    assert histograms([], 10)["n"] == 0
    assert sum(histograms(list(np.linspace(0, 1, 50)), 5)["counts"]) == 50
