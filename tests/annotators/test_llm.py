"""LLM annotator against a real OpenAI-compatible server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from duplexloom.annotators import AnnotatorConfig, LLMConfig, chains, cognition
from duplexloom.annotators.batch import dialogue_text
from duplexloom.annotators.dedup import find_near_duplicates
from duplexloom.annotators.responses import CognitionOut
from duplexloom.schemas import Reject, RejectError, Seed
from duplexloom.schemas.annotation import AnnotatedTurn, Annotation, CognitionEntry, ThinkingNode
from tests.annotators.fake_openai_server import FakeOpenAIServer
from tests.annotators.own_family import annotate_own


def llm_config(srv: FakeOpenAIServer, **kw) -> AnnotatorConfig:
    llm = dict(
        base_url=srv.base_url,
        model="fake-model",
        timeout_s=0.5,
        max_attempts=3,
        max_validation_attempts=2,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        max_in_flight=4,
    )
    llm.update(kw)
    return AnnotatorConfig(backend="llm", llm=LLMConfig(**llm))


def request_seed(key: str) -> Seed:
    return Seed(
        id=key,
        lang="en",
        kind="tool_request",
        family="toolcall",
        turns=[{"role": "user", "text": f"please look up videos about {key}"}],
    )


# key -> (faults served to that seed's requests, expected reject code or None for success)
CASES = {
    "okay": ([], None),
    "ratelimited": (["429"], None),
    "servererror": (["500", "500"], None),
    "slowpoke": (["slow"], None),
    "dropped": (["drop"], None),
    "truncated": (["truncated"], None),
    "misshapen": (["schema"], None),
    "wanderer": (["bad_anchor"], None),
    "lostanchor": (["bad_anchor", "bad_anchor"], "anchor_not_found"),
    "inventor": (["unknown_tool", "unknown_tool"], "unknown_tool"),
    "smuggler": (["marker", "marker"], "marker_in_text"),
    "garbled": (["truncated", "schema"], "llm_invalid_output"),
    "downhard": (["500", "500", "500"], "llm_unavailable"),
}


def test_every_fault_ends_in_success_or_reject_and_no_seed_is_lost():
    script = {k: list(v[0]) for k, v in CASES.items()}
    with FakeOpenAIServer(script=script, slow_s=1.5) as srv:
        seeds = [request_seed(k) for k in CASES]
        results = annotate_own(seeds, llm_config(srv), run_seed=0)
        assert all(not q for q in srv.script.values()), "every scripted fault was served"
        assert srv.max_in_flight_seen <= 4
    assert len(results) == len(seeds)
    for seed, res in zip(seeds, results, strict=True):
        expected = CASES[seed.id][1]
        if expected is None:
            assert isinstance(res, Annotation), (seed.id, res)
            (act,) = res.turns[0].actions
            assert act.anchor in res.turns[0].text and act.name == "search_online_video"
            assert res.provenance["actions"] == "llm:fake-model:actions.v2"
            assert len(res.prompt_hashes["actions.v2"]) == 64
        else:
            assert isinstance(res, Reject), (seed.id, res)
            assert (res.record_id, res.stage, res.code) == (seed.id, "annotate", expected)
            assert res.detail


def test_retry_after_is_honoured():
    with FakeOpenAIServer(script={"*": ["429"]}, retry_after="0.4") as srv:
        t0 = time.monotonic()
        (res,) = annotate_own([request_seed("patience")], llm_config(srv), run_seed=0)
        elapsed = time.monotonic() - t0
    assert isinstance(res, Annotation)
    assert srv.faults_served["429"] == 1
    # Our own backoff is capped at 0.05 s, so waiting this long means the header was obeyed.
    assert elapsed >= 0.4


def test_json_mode_fallback_for_servers_without_json_schema():
    with FakeOpenAIServer(json_schema=False) as srv:
        res = annotate_own([request_seed("fallback"), request_seed("again")], llm_config(srv), run_seed=0)
        formats = [r["response_format"]["type"] for r in srv.requests]
    assert all(isinstance(r, Annotation) for r in res)
    assert formats[0] == "json_schema" and formats[-1] == "json_object"
    assert formats.count("json_object") == 2  # the client stays in JSON mode once it fell back


def test_cache_makes_rerun_free_and_key_never_leaks(tmp_path: Path, monkeypatch):
    secret = "sk-test-secret-0123456789"
    monkeypatch.setenv("DUPLEXLOOM_TEST_KEY", secret)
    seeds = [request_seed(f"cached{i}") for i in range(5)]
    with FakeOpenAIServer() as srv:
        cfg = llm_config(srv, cache_dir=str(tmp_path / "cache"), api_key_env="DUPLEXLOOM_TEST_KEY")
        first = annotate_own(seeds, cfg, run_seed=0)
        n_first = len(srv.requests)
        second = annotate_own(seeds, cfg, run_seed=0)
        n_second = len(srv.requests) - n_first
        other_model = annotate_own(
            seeds, cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"model": "m2"})}), run_seed=0
        )
        n_third = len(srv.requests) - n_first - n_second
        assert set(srv.auth_headers) == {f"Bearer {secret}"}  # the key reaches the server...
    assert n_first == 5 and n_second == 0 and n_third == 5
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    # ... and nothing else: not the config dump, not the results, not the cache files.
    dumped = json.dumps([r.model_dump() for r in first + other_model]) + cfg.model_dump_json()
    dumped += "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert secret not in dumped
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 10


def test_families_over_llm_and_near_duplicates():
    seeds = [
        Seed(id="t1", lang="en", kind="topic", topic="volcanoes"),
        Seed(id="t2", lang="en", kind="topic", topic="volcanos"),  # near-duplicate generated dialogue
        Seed(id="t3", lang="zh", kind="topic", topic="长城的历史"),
    ]
    qa = [
        {"role": "user", "text": "从市中心开车去机场,高峰期要多久"},
        {"role": "assistant", "text": "大概四十分钟。"},
    ]
    fams = ["interrupt", "interpret", "think", "toolcall"]
    seeds += [Seed(id=f"zh-{f}", lang="zh", family=f, turns=qa) for f in fams]
    with FakeOpenAIServer() as srv:
        res = {
            r.record_id if isinstance(r, Reject) else r.seed_id: r
            for r in annotate_own(seeds, llm_config(srv), run_seed=0)
        }
    assert res["t1"].provenance["turns"] == "llm:fake-model:dialogue.v2"
    # near-duplicates across seeds are the run-wide step's business (pipelines/dedup.py), not a batch's
    texts = [(k, dialogue_text(res[k])) for k in ("t1", "t2", "t3")]
    assert find_near_duplicates(texts) == {"t2": ("t1", find_near_duplicates(texts)["t2"][1])}
    assert isinstance(res["t3"], Annotation)
    assert res["zh-interrupt"].interruptions[0].startswith("你说得对")
    interp = res["zh-interpret"]
    assert [t.role for t in interp.turns] == ["user", "assistant"]
    assert interp.turns[0].translation and interp.turns[1].text == interp.turns[0].translation
    think = res["zh-think"]
    (stream,) = think.cognition
    pieces = cognition.segment_per_second(qa[0]["text"], "zh", AnnotatorConfig().speech_rate_zh_chars_per_s)
    assert len(stream.entries) == len(pieces) and stream.voice_response
    # The assistant speaks the voice response; the full answer is the written channel.
    assert think.turns[1].text == stream.voice_response != stream.reply_text
    assert stream.heard_units == tuple(cognition.heard_counts(qa[0]["text"], "zh", 4.0))
    assert think.chains and think.chains[0].type == "ENTITY"
    tc = res["zh-toolcall"]
    assert tc.provenance["turns"].startswith("llm:") and any(t.actions for t in tc.turns)


def test_segmentation_covers_text():
    text = "please open the window and then play some music by the Beatles"
    pieces = cognition.segment_per_second(text, "en", 2.5)
    assert " ".join(pieces).split() == text.split()
    assert len(pieces) == 5  # 12 words at 2.5 words/s
    zh = "帮我打开车窗然后放点音乐"
    zp = cognition.segment_per_second(zh, "zh", 4.0)
    assert "".join(zp) == zh and len(zp) == 3


def test_cognition_checks_reject_peeking_overlong_and_silent():
    pieces = ["please open", "the window and", "then play music"]

    def out(texts, voice="Opening it."):
        return CognitionOut(
            entries=[CognitionEntry(second=i, text=t) for i, t in enumerate(texts)],
            voice_response=voice,
            reply_text="x",
        )

    cognition.check(out(["user asks to open", "open the window", "window and music"]), pieces, "en", 40)
    cases = [
        (out(["wants music playing", "window", "music"]), "cognition_not_causal"),
        (out(["a" * 50, "b", "c"]), "cognition_over_budget"),
        (out(["a", "b", "c"], voice="  "), "cognition_empty_voice"),
        (out(["a", "b"]), "cognition_misaligned"),
    ]
    for o, code in cases:
        with pytest.raises(RejectError) as e:
            cognition.check(o, pieces, "en", 40)
        assert e.value.code == code


def test_chain_checks():
    turns = [
        AnnotatedTurn(role="user", text="I want to visit Paris, what is the weather there?"),
        AnnotatedTurn(role="assistant", text="Sunny."),
        AnnotatedTurn(role="user", text="Book a hotel there."),
    ]
    good = [
        ThinkingNode(type="ENTITY", text="Paris", turn_index=0, segment_index=0, ctx_id="p"),
        ThinkingNode(type="INTENT", text="weather query", turn_index=0, segment_index=1),
        ThinkingNode(type="ACTION", text="hotel in the city", turn_index=2, segment_index=0, ctx_id="p"),
    ]
    chains.check(good, turns)
    assert chains.render(good[2]) == "{ACTION} hotel in the city @ctx:p"
    bad = {
        "chain_unbound_ctx": [good[1], ThinkingNode(type="LOGIC", text="x", turn_index=2, ctx_id="q")],
        "chain_not_chronological": [good[1], good[0]],
        "chain_bad_segment": [ThinkingNode(type="ENTITY", text="x", turn_index=1)],
    }
    for code, nodes in bad.items():
        with pytest.raises(RejectError) as e:
            chains.check(nodes, turns)
        assert e.value.code == code


def _system_prompts(srv: FakeOpenAIServer, task: str) -> list[str]:
    return [
        r["messages"][0]["content"]
        for r in srv.requests
        if r["messages"][0]["content"].startswith(f"Task: {task}")
    ]


def test_v2_tool_calls_carry_planning_and_the_reply_fits_the_call():
    qa = [{"role": "user", "text": "车里有点热,帮我打开空调"}, {"role": "assistant", "text": "嗯。"}]
    seeds = [
        Seed(id="zh-tc", lang="zh", kind="tool_request", family="toolcall", turns=qa),
        request_seed("cooking"),  # en, a search call: the reply answers with content
        Seed(id="noplan", lang="en", kind="tool_request", family="toolcall", turns=request_seed("x").turns),
    ]
    with FakeOpenAIServer(script={"about x": ["no_planning", "no_planning"]}) as srv:
        res = {
            (r.record_id if isinstance(r, Reject) else r.seed_id): r
            for r in annotate_own(seeds, llm_config(srv), run_seed=0)
        }
        prompts = _system_prompts(srv, "actions")
    assert prompts and all("planning" in p and "repeats the argument values" in p for p in prompts)
    zh = res["zh-tc"]
    (act,) = zh.turns[0].actions
    assert act.planning and re.search(r"[\u4e00-\u9fff]", act.planning)
    assert zh.turns[1].role == "assistant" and zh.turns[1].text == "好的，空调已打开，现在是二十四度。"
    en = res["cooking"]
    (act,) = en.turns[0].actions
    assert act.planning and en.turns[1].text == f"I found three videos about {act.parameters['query']}."
    assert isinstance(res["noplan"], Reject) and res["noplan"].code == "llm_invalid_output"
    assert "planning" in res["noplan"].detail


def test_v2_interruptions_are_on_topic_with_replies():
    qa = [
        {"role": "user", "text": "How long does it take to drive to the airport"},
        {"role": "assistant", "text": "About forty minutes, the traffic is heavy."},
    ]
    seeds = [Seed(id=f"i{k}", lang="en", family="interrupt", turns=qa) for k in range(2)]
    with FakeOpenAIServer(script={'"counts"': ["ok", "no_replies", "no_replies"]}) as srv:
        ok, bad = annotate_own(seeds, llm_config(srv, max_in_flight=1), run_seed=0)
        prompts = _system_prompts(srv, "duplex_material")
    assert all("same topic" in p and "interruption_replies" in p for p in prompts)
    assert len(ok.interruption_replies) == len(ok.interruptions) == 2
    assert all("airport" in t for t in ok.interruptions) and all(
        "airport" in r for r in ok.interruption_replies
    )
    assert ok.interruptions[0].startswith("you are right, but")
    assert ok.provenance["interruption_replies"] == "llm:fake-model:duplex_material.v2"
    assert isinstance(bad, Reject) and bad.code == "llm_invalid_output"


def test_prompt_version_1_reproduces_v1():
    from duplexloom.annotators import templates

    seeds = [
        request_seed("videos"),
        Seed(id="i", lang="en", family="interrupt", turns=request_seed("v").turns),
    ]
    seeds[1] = Seed(
        id="i",
        lang="en",
        family="interrupt",
        turns=[
            {"role": "user", "text": "what is a comet"},
            {"role": "assistant", "text": "A ball of ice and dust."},
        ],
    )
    with FakeOpenAIServer() as srv:
        cfg = llm_config(srv).model_copy(update={"prompt_version": 1})
        tc, inter = annotate_own(seeds, cfg, run_seed=0)
        sent = [r["messages"][0]["content"] for r in srv.requests]
    assert tc.provenance["actions"] == "llm:fake-model:actions.v1"
    assert inter.provenance["interruptions"] == "llm:fake-model:duplex_material.v1"
    assert inter.interruption_replies == () and "interruption_replies" not in inter.provenance
    assert not any("Version:" in s for s in sent)
    v1_head = templates.prompt("actions", 1).system.split("{{catalog}}")[0]
    assert any(s.startswith(v1_head) for s in sent)
    assert templates.prompt("cognition", 1).key == "cognition.v1"
    assert templates.prompt("actions").key == "actions.v2"
