"""The SPEC 17 self-check on real synthesized sessions: clean sessions pass, planted defects are caught
with the sample key and the chunk."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.qa.semantic import check_sample, reject_code
from duplexloom.schemas.units import chunk_samples
from duplexloom.timeline import augment as aug
from duplexloom.timeline.config import TimelineConfig
from duplexloom.timeline.families import action_channel, asr_sides, keep_channel
from duplexloom.timeline.merge import build_session, plan_session
from duplexloom.timeline.serialize import serialize
from duplexloom.timeline.tokenizer import load_tokenizer
from tests.timeline.test_merge_fixtures import (
    en_annotation,
    library,
    make_clips,
    tool_annotation,
    zh_annotation,
)

TOK = load_tokenizer(None)
CFG = TimelineConfig()


def _session(ann, seed=1, cfg=CFG):
    plan = plan_session(ann, cfg, seed, library=library())
    return build_session(plan, make_clips(plan), cfg, seed)


def _check(key, tl, chunks, user, assistant, channel):
    """``check_sample`` with both tracks padded to the chunks (as the shard writer does)."""
    n = len(chunks) * chunk_samples(tl.sample_rate)
    pad = lambda a: np.pad(a, (0, n - a.shape[0]))  # noqa: E731
    return check_sample(key, tl, chunks, pad(user), pad(assistant), action_channel=channel)


def _score(built, timeline=None, user=None, assistant=None, channel=None):
    tl = timeline if timeline is not None else built.timeline
    channel = channel if channel is not None else action_channel(tl.family)
    tl = keep_channel(tl, channel)
    chunks = serialize(tl, tokenizer=TOK, asr_sides=asr_sides(channel), check=False)
    user = built.user_audio if user is None else user
    assistant = built.assistant_audio if assistant is None else assistant
    return _check("key-1", tl, chunks, user, assistant, channel)


@pytest.mark.parametrize(
    "family", ["dialogue", "asr_human", "asr_assistant", "interrupt", "backchannel", "pause"]
)
@pytest.mark.parametrize("make", [en_annotation, zh_annotation])
def test_clean_sessions_pass(family, make):
    rep = _score(_session(make(family), seed=2))
    assert rep.passed, rep.describe()
    assert "channel" in rep.applied and "word_spans" in rep.applied
    if family in ("interrupt", "backchannel", "pause"):
        assert {"early_label", "label_count"} <= rep.applied
    if family == "interrupt":
        assert "interrupt_stop" in rep.applied
    if family.startswith("asr"):
        assert "asr_timing" in rep.applied


def test_clean_tool_session_passes():
    rep = _score(_session(tool_annotation("zh"), seed=3))
    assert rep.passed, rep.describe()
    assert "tool_timing" in rep.applied and rep.measured["tool_first_token_after_anchor_s"]


def test_an_early_label_is_caught_with_its_chunk():
    built = _session(en_annotation("pause"), seed=7)
    tl = built.timeline
    resp = next(a for a in tl.actions if a.name == "response")
    early = resp.model_copy(update={"offset_samples": resp.offset_samples - int(0.5 * tl.sample_rate)})
    bad = tl.model_copy(update={"actions": tuple(early if a.id == resp.id else a for a in tl.actions)})
    rep = _score(built, timeline=bad)
    assert not rep.passed and reject_code(rep) == "semantic_early_label"
    f = rep.failures[0]
    assert f.chunk == early.offset_samples // chunk_samples(tl.sample_rate)
    assert rep.describe().startswith("key-1:") and f"chunk {f.chunk}" in rep.describe()


def test_a_stop_before_the_label_is_caught():
    built = _session(en_annotation("interrupt"), seed=1)
    tl = built.timeline
    chunk = chunk_samples(tl.sample_rate)
    label = next(a for a in tl.actions if a.name == "interrupt")
    c = label.offset_samples // chunk
    host = next(u for u in tl.utterances if u.cut_samples is not None)
    # the assistant falls silent 100 ms before the label's chunk starts (what the issue measured)
    asst = built.assistant_audio.copy()
    asst[c * chunk - int(0.1 * tl.sample_rate) : host.cut_samples] = 0.0
    rep = _score(built, assistant=asst)
    assert not rep.passed and reject_code(rep) == "semantic_interrupt_stop"
    assert rep.failures[0].chunk == c


def test_wrong_family_content_is_caught():
    built = _session(zh_annotation("dialogue"), seed=2)
    # a dialogue sample that carries the user transcript (the old global asr_sides default)
    rep = _score(built, channel=("asr_user",))
    assert rep.passed  # an explicit override of the table is allowed ...
    tl = built.timeline
    chunks = serialize(keep_channel(tl, ("asr_user",)), tokenizer=TOK, asr_sides=("user",), check=False)
    # ... but against SPEC 11's table for dialogue (no override recorded), it is wrong
    rep = _check("key-2", tl, chunks, built.user_audio, built.assistant_audio, None)
    assert reject_code(rep) == "semantic_channel" and rep.failures[0].chunk is not None
    # an asr_assistant sample must not carry the user's words
    asr = _session(en_annotation("asr_assistant"), seed=2)
    rep = _score(asr, channel=None)
    assert rep.passed, rep.describe()
    tl = asr.timeline
    chunks = serialize(tl, tokenizer=TOK, asr_sides=("user",), check=False)
    rep = _check("key-3", tl, chunks, asr.user_audio, asr.assistant_audio, None)
    assert reject_code(rep) == "semantic_channel"


def test_a_word_span_that_misses_its_sound_is_caught():
    built = _session(en_annotation("dialogue"), seed=4)
    tl = built.timeline
    user = next(u for u in tl.utterances if u.speaker == "user" and len(u.words) >= 3)
    words = list(user.words)
    # the last word's span slides into the silence after the utterance (a CTC spike far too late)
    w = words[-1]
    shift = (w.end_samples - w.start_samples) + int(0.3 * tl.sample_rate)
    words[-1] = w.model_copy(
        update={"start_samples": w.start_samples + shift, "end_samples": w.end_samples + shift}
    )
    moved = user.model_copy(
        update={"words": tuple(words), "audio_end_samples": user.audio_end_samples + shift}
    )
    bad = tl.model_copy(update={"utterances": tuple(moved if u.id == user.id else u for u in tl.utterances)})
    rep = _score(built, timeline=bad)
    assert not rep.passed
    assert "word_spans" in rep.failed_checks()
    f = next(f for f in rep.failures if f.check == "word_spans")
    assert user.id in f.detail
    # the chunk named is where the word's sound really is, now outside every span
    assert (
        w.start_samples // chunk_samples(tl.sample_rate)
        <= f.chunk
        <= (w.end_samples - 1) // chunk_samples(tl.sample_rate)
    )


def test_an_assistant_speaking_into_a_pause_is_an_early_response():
    built = _session(zh_annotation("pause"), seed=7)
    tl = built.timeline
    first = next(u for u in tl.utterances if u.id.endswith(".1"))
    second = next(u for u in tl.utterances if u.id == first.id[:-1] + "2")
    asst = built.assistant_audio.copy()
    a0 = aug.speech_end(first) + int(0.1 * tl.sample_rate)
    t = np.arange(int(0.3 * tl.sample_rate)) / tl.sample_rate
    asst[a0 : a0 + t.shape[0]] += (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert a0 + t.shape[0] < aug.speech_start(second)
    rep = _score(built, assistant=asst)
    assert reject_code(rep) == "semantic_early_response"
    assert rep.failures[0].chunk == a0 // chunk_samples(tl.sample_rate)


def _shard_sample(key: str, built, timeline=None):
    from duplexloom.schemas import SampleMeta
    from duplexloom.schemas.sample import TokenizerInfo
    from duplexloom.timeline.sample_codec import encode_sample
    from duplexloom.timeline.serialize import render_trace
    from tests.timeline.test_merge_fixtures import library

    tl = keep_channel(
        timeline if timeline is not None else built.timeline, action_channel(built.timeline.family)
    )
    channel = action_channel(tl.family)
    chunks = serialize(tl, tokenizer=TOK, asr_sides=asr_sides(channel))
    lib = library()
    user = next(u for u in tl.utterances if u.speaker == "user").speaker_id
    asst = next(u for u in tl.utterances if u.speaker == "assistant").speaker_id
    meta = SampleMeta(
        key=key,
        family=tl.family,
        lang=tl.lang,
        system_prompt="",
        speakers={"user": lib.by_id(user), "assistant": lib.by_id(asst)},
        tokenizer=TokenizerInfo(name="builtin", kind="builtin"),
        run_seed=1,
        seed_id=key,
        timeline=tl,
        action_channel=channel,
    )
    return key, encode_sample(meta, built.user_audio, built.assistant_audio, chunks, render_trace(chunks))


def test_validate_semantic_finds_what_form_checks_pass(tmp_path, capsys):
    from duplexloom.qa.validate_cli import main as validate
    from duplexloom.timeline.sample_codec import shard_tar_bytes

    good = _session(en_annotation("pause"), seed=7)
    tl = good.timeline
    resp = next(a for a in tl.actions if a.name == "response")
    early = resp.model_copy(update={"offset_samples": resp.offset_samples - int(0.5 * tl.sample_rate)})
    bad_tl = tl.model_copy(update={"actions": tuple(early if a.id == resp.id else a for a in tl.actions)})
    shard = tmp_path / "000000.tar"
    shard.write_bytes(
        shard_tar_bytes(sorted([_shard_sample("good", good), _shard_sample("bad", good, bad_tl)]))
    )
    assert validate([str(shard)]) == 0  # every form invariant holds on both
    capsys.readouterr()
    assert validate([str(shard), "--semantic"]) == 1
    out = capsys.readouterr().out
    chunk = early.offset_samples // chunk_samples(tl.sample_rate)
    assert f"bad chunk {chunk}: semantic_early_label" in out
    assert "good" not in out
