"""Offline annotator + annotate_batch: determinism, families, anchors, the ambiguous acknowledgement."""

from __future__ import annotations

import re

import pytest

from duplexloom.annotators import AnnotatorConfig, annotate_batch, omitted_fields
from duplexloom.annotators.checks import anchor_position, check_actions
from duplexloom.annotators.dedup import band_keys, find_near_duplicates, normalize, too_similar
from duplexloom.prompts import FAMILIES, validate_arguments
from duplexloom.schemas import Reject, RejectError, Seed
from duplexloom.schemas.annotation import AnnotatedAction, Annotation
from tests.annotators.own_family import annotate_own

QA = {
    "zh": ("今天下午去机场要多久", "大概四十分钟,路上有点堵。"),
    "en": ("how long does it take to get to the airport", "About forty minutes, the traffic is heavy."),
}


def qa_seed(i: int, lang: str, family: str | None = None, **kw) -> Seed:
    u, a = QA[lang]
    return Seed(
        id=f"{lang}-{family}-{i}",
        lang=lang,
        family=family,
        turns=[{"role": "user", "text": u}, {"role": "assistant", "text": a}],
        **kw,
    )


def test_one_result_per_seed_in_order_and_deterministic():
    seeds = [qa_seed(i, lang, fam) for i in range(3) for lang in ("zh", "en") for fam in FAMILIES]
    seeds.append(Seed(id="topic-only", lang="en", kind="topic", topic="volcanoes"))
    a = annotate_own(seeds, AnnotatorConfig(), run_seed=7)
    b = annotate_own(seeds, AnnotatorConfig(), run_seed=7)
    assert [r.model_dump() for r in a] == [r.model_dump() for r in b]
    assert len(a) == len(seeds)
    for seed, res in zip(seeds, a, strict=True):
        if isinstance(res, Reject):
            assert res.record_id == seed.id and res.stage == "annotate"
        else:
            assert res.seed_id == seed.id and res.family == seed.family
    codes = {r.record_id: r.code for r in a if isinstance(r, Reject)}
    # any seed with turns serves any family offline; only a topic-only seed needs an LLM
    assert codes == {"topic-only": "needs_llm"}


def test_run_seed_changes_draws():
    seeds = [qa_seed(i, "en", "interrupt") for i in range(20)]
    a = annotate_own(seeds, AnnotatorConfig(), run_seed=1)
    b = annotate_own(seeds, AnnotatorConfig(), run_seed=2)
    assert [r.interruptions for r in a] != [r.interruptions for r in b]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_toolcall_patterns_anchored_and_valid(lang):
    seeds = [qa_seed(i, lang, "toolcall") for i in range(60)]
    results = annotate_own(seeds, AnnotatorConfig(), run_seed=3)
    patterns = set()
    for res in results:
        assert isinstance(res, Annotation)
        requests = [t for t in res.turns if t.actions]
        assert len(requests) == 1
        turn = requests[0]
        check_actions(turn.text, turn.actions)  # raises on a bad anchor or argument
        for act in turn.actions:
            validate_arguments(act.name, act.parameters)
            assert anchor_position(act.anchor, turn.text) >= 0
        pattern = res.provenance["tool_pattern"]
        patterns.add(pattern)
        assert {a.pattern for a in turn.actions} == {pattern}
        idx = res.turns.index(turn)
        if pattern == "backchannel_action":
            assert res.turns[idx - 1].role == "assistant"  # the request is made while it speaks
        elif pattern == "multi":
            assert len(turn.actions) == 2 and len({a.name for a in turn.actions}) == 2
        else:
            assert len(turn.actions) == 1 and res.turns[idx + 1].role == "assistant"
    assert patterns == {"single", "multi", "backchannel_action"}


def test_tool_request_seed_uses_hint_and_seed_actions():
    hinted = Seed(
        id="h", lang="en", kind="tool_request", turns=[{"role": "user", "text": "x y"}], tools=("navigate",)
    )
    cfg = AnnotatorConfig(tool_patterns=("single",))
    (res,) = annotate_batch([hinted], cfg, run_seed=0, families=["toolcall"])
    assert res.turns[0].actions[0].name == "navigate"
    text = "please turn the volume up a bit"
    good = {"name": "increase_system_setting", "parameters": {"setting": "volume"}, "anchor": "volume up"}
    bad = dict(good, anchor="turn the heat up")
    seeds = [
        Seed(
            id=f"m{i}",
            lang="en",
            kind="tool_request",
            turns=[{"role": "user", "text": text}],
            meta={"actions": [a]},
        )
        for i, a in enumerate([good, bad])
    ]
    ok, rej = annotate_batch(seeds, cfg, run_seed=0, families=["toolcall"] * len(seeds))
    assert ok.provenance["actions"] == "seed" and ok.turns[0].actions[0].anchor == "volume up"
    assert isinstance(rej, Reject) and rej.code == "anchor_not_found"


@pytest.mark.parametrize("lang,ack", [("zh", "你说得对"), ("en", "you are right")])
def test_ambiguous_acknowledgement_both_ways(lang, ack):
    inter = annotate_own([qa_seed(i, lang, "interrupt") for i in range(40)], AnnotatorConfig(), run_seed=5)
    back = annotate_own([qa_seed(i, lang, "backchannel") for i in range(40)], AnnotatorConfig(), run_seed=5)
    as_interrupt = [r for r in inter if r.interruptions[0].startswith(ack)]
    as_backchannel = [r for r in back if ack in r.backchannels]
    assert as_interrupt and len(as_interrupt) < 40  # seeded choice: some but not all
    assert as_backchannel and len(as_backchannel) < 40
    for r in as_interrupt:
        assert len(r.interruptions[0]) > len(ack) + 2  # "you are right, but ..." carries a new thought
        assert ack not in r.backchannels  # never both meanings in one seed
    for r in inter + back:
        assert r.fillers and r.backchannels and r.interruptions


def test_interpret_with_translation_and_marker_guard():
    ok = qa_seed(0, "zh", "interpret", meta={"translation": "How long to the airport this afternoon?"})
    bad = qa_seed(1, "zh", "interpret", meta={"translation": "to the airport <|toolcall_begin|>"})
    r_ok, r_bad = annotate_own([ok, bad], AnnotatorConfig(), run_seed=0)
    assert r_ok.turns[0].translation.startswith("How long") and r_ok.provenance["translation"] == "seed"
    # the assistant speaks the translation right after the user turn (not the seed's own answer)
    assert [t.role for t in r_ok.turns] == ["user", "assistant"]
    assert r_ok.turns[1].text == r_ok.turns[0].translation
    assert isinstance(r_bad, Reject) and r_bad.code == "marker_in_text"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_interpret_without_translation_is_a_templated_bilingual_pair(lang):
    seeds = [qa_seed(i, lang, "interpret") for i in range(10)] + [
        Seed(id=f"u{i}", lang=lang, family="interpret", turns=[{"role": "user", "text": QA[lang][0]}])
        for i in range(3)
    ]
    other = r"[\u4e00-\u9fff]" if lang == "en" else r"[A-Za-z]{3}"
    for res in annotate_own(seeds, AnnotatorConfig(), run_seed=1):
        assert isinstance(res, Annotation) and res.family == "interpret"
        assert res.provenance["translation"] == "offline:tool_requests.v2"
        user, asst = res.turns
        assert asst.role == "assistant" and asst.text == user.translation
        assert re.search(other, user.translation), user.translation


def test_think_offline_makes_causal_cognition_and_chains():
    (res,) = annotate_own([qa_seed(0, "en", "think")], AnnotatorConfig(), run_seed=0)
    (stream,) = res.cognition
    assert len(stream.entries) == len(stream.heard_units) and stream.voice_response
    assert res.turns[1].text == stream.voice_response  # the assistant speaks the voice response
    assert res.chains and res.provenance["chains"] == "offline:chains.v1"
    assert res.provenance["cognition"] == "offline:cognition.v1" and omitted_fields(res) == []


@pytest.mark.parametrize("family", ["dialogue", "interrupt", "think", "asr_assistant"])
def test_seed_without_answer_is_a_recorded_substitution(family):
    seed = Seed(id="q", lang="en", family=family, turns=[{"role": "user", "text": "what is a comet"}])
    (res,) = annotate_own([seed], AnnotatorConfig(), run_seed=0)
    assert res.family == "asr_human"
    assert res.provenance["family_substitution"] == f"{family}->asr_human"


def test_the_annotator_never_decides_a_family():
    """The annotate stage decides the family (and rejects an unknown one); handing the annotator a
    family that does not exist, or none for a seed, is the caller's bug."""
    with pytest.raises(ValueError, match="karaoke"):
        annotate_batch([qa_seed(0, "en")], AnnotatorConfig(), run_seed=0, families=["karaoke"])
    with pytest.raises(ValueError, match="0 families for 1 seeds"):
        annotate_batch([qa_seed(0, "en", "pause")], AnnotatorConfig(), run_seed=0, families=[])
    with pytest.raises(TypeError):
        annotate_batch([qa_seed(0, "en", "pause")], AnnotatorConfig(), run_seed=0)  # type: ignore[call-arg]


def test_check_actions_order_and_unknown_tool():
    text = "open the sunroof and then call mom"
    a1 = AnnotatedAction(
        name="open_car_setting", parameters={"setting": "sunroof"}, anchor="open the sunroof"
    )
    a2 = AnnotatedAction(name="make_call", parameters={"contact": "mom"}, anchor="call mom")
    check_actions(text, [a1, a2])
    with pytest.raises(RejectError) as e:
        check_actions(text, [a2, a1])
    assert e.value.code == "anchor_order"
    with pytest.raises(RejectError) as e:
        check_actions(text, [AnnotatedAction(name="teleport", anchor="call mom")])
    assert e.value.code == "unknown_tool"


def test_near_duplicate_blocking_finds_and_prunes():
    base = "the quick brown fox jumps over the lazy dog near the river bank at dawn"
    others = [
        f"unrelated sentence number {i} about topic {i * 7} and other things {i * 13}" for i in range(200)
    ]
    keys = set(band_keys(normalize(base)))
    near = set(band_keys(normalize(base.replace("dawn", "dusk"))))
    assert keys & near  # the near-duplicate lands in a block with the original
    # blocking: few unrelated texts share any block with it, so few comparisons are made
    assert sum(1 for o in others if keys & set(band_keys(normalize(o)))) < 20
    texts = [(f"u{i:03d}", o) for i, o in enumerate(others)] + [
        ("orig", base),
        ("p", base.replace("dawn", "dusk")),
    ]
    drops = find_near_duplicates(texts)
    assert "orig" not in drops and drops["p"][0] == "orig" and drops["p"][1] > 90
    # the templated "unrelated" sentences differ only in their numbers: near-duplicates too, kept by id
    assert all(k.startswith("u") and v[0] < k for k, v in drops.items() if k != "p")
    assert too_similar("你好,今天天气很好", "你好!今天天气很好。") is not None


def test_tool_request_seed_with_assistant_turn_never_crashes_on_backchannel_action():
    # Regression: a tool_request seed whose own turns include an assistant reply used to pick the
    # backchannel_action pattern and then find no assistant turn to talk over (StopIteration).
    seeds = [
        Seed(
            id=f"tr-{i}",
            lang="en",
            kind="tool_request",
            family="toolcall",
            turns=[{"role": "user", "text": "turn on the AC"}, {"role": "assistant", "text": "Sure."}],
        )
        for i in range(30)
    ]
    config = AnnotatorConfig(tool_patterns=("backchannel_action",))
    results = annotate_own(seeds, config, run_seed=0)
    assert len(results) == len(seeds)
    for res in results:
        assert isinstance(res, Annotation), res
        assert res.provenance["tool_pattern"] == "single"


_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_catalog_function_has_templates_with_planning_and_a_fitting_reply(lang):
    """All 50 functions render: valid anchored call, planning in the session language, and a reply
    that repeats the spoken argument values (a confirmation) or answers with content."""
    import numpy as np

    from duplexloom.annotators.offline import render_request
    from duplexloom.prompts import load_catalog

    for fn in load_catalog():
        replies = set()
        for draw in range(12):
            text, action, reply = render_request(fn, lang, np.random.default_rng(draw), "single")
            check_actions(text, (action,))
            assert action.planning and bool(_CJK.search(action.planning)) == (lang == "zh"), action.planning
            assert bool(_CJK.search(reply)) == (lang == "zh"), reply
            assert "{" not in text + action.planning + reply and "[" not in text
            assert not re.search(r"\d", text + reply)  # spoken: numbers in words (aligners have no digits)
            props = load_catalog()[fn].parameters["properties"]
            for k, v in action.parameters.items():
                # a spoken free-text value (a place, a contact, a profile name) is echoed in the reply
                if isinstance(v, str) and "enum" not in props[k] and v in text and not v.isdigit():
                    assert v in reply, (fn, v, reply)
            replies.add(reply)
        assert len(replies) >= 2, (fn, replies)  # replies vary with the call, never one canned text


def test_toolcall_replies_are_not_canned():
    seeds = [qa_seed(i, lang, "toolcall") for i in range(40) for lang in ("zh", "en")]
    results = annotate_own(seeds, AnnotatorConfig(), run_seed=11)
    replies = []
    for res in results:
        req = next(i for i, t in enumerate(res.turns) if t.actions)
        assert res.turns[req + 1].role == "assistant"  # the call is answered right after
        replies.append(res.turns[req + 1].text)
        assert all(a.planning for a in res.turns[req].actions)
    assert len(set(replies)) >= 0.9 * len(replies)
    assert not {"Okay, done.", "好的,已经处理了。", "好的，已经处理了。"} & set(replies)


def test_seed_actions_without_planning_get_one():
    seed = Seed(
        id="s",
        lang="zh",
        kind="tool_request",
        turns=[
            {"role": "user", "text": "把音量调大一点"},
            {"role": "assistant", "text": "好的，音量调大了。"},
        ],
        meta={
            "actions": [
                {"name": "increase_system_setting", "parameters": {"setting": "volume"}, "anchor": "调大"}
            ]
        },
    )
    (res,) = annotate_batch([seed], AnnotatorConfig(), run_seed=0, families=["toolcall"])
    assert "调大" in res.turns[0].actions[0].planning


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_interruptions_are_on_topic_with_replies(lang):
    from duplexloom.timeline.augment import ACK_PHRASES, norm_units

    topic = "月球" if lang == "zh" else "the moon"
    seeds = [qa_seed(i, lang, "interrupt", topic=topic) for i in range(30)]
    for res in annotate_own(seeds, AnnotatorConfig(), run_seed=4):
        assert len(res.interruption_replies) == len(res.interruptions) == 2
        for text, reply in zip(res.interruptions, res.interruption_replies, strict=True):
            units = norm_units(text, lang)
            ack = next(
                (a for a in ACK_PHRASES[lang] if units[: len(norm_units(a, lang))] == norm_units(a, lang)), ""
            )
            assert len(units) - len(norm_units(ack, lang)) >= 4, text
            assert reply.strip() and reply != text
        # a new thought on the conversation's topic, the "you are right, but ..." hard case too
        for text, reply in zip(res.interruptions, res.interruption_replies, strict=True):
            assert topic in text and topic in reply, (text, reply)


def test_seed_carried_interruptions_come_first():
    own = [
        {"text": "wait, but what about the far side of the moon", "reply": "The far side faces away from us."}
    ]
    seed = qa_seed(0, "en", "interrupt", meta={"interruptions": own})
    (res,) = annotate_own([seed], AnnotatorConfig(ambiguous_ack_p=0.0), run_seed=0)
    assert res.interruptions[0] == own[0]["text"] and res.interruption_replies[0] == own[0]["reply"]
