"""Issue-16 plumbing around the content: substitutions counted in the summary, the bundled seed
set names, and the content statistics of a run's samples."""

from __future__ import annotations

from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.content_stats import content_stats
from duplexloom.pipelines.outputs import build_summary
from duplexloom.pipelines.run import DEFAULT_SEEDS, FULL_SEEDS, seed_patterns
from duplexloom.pipelines.seeds import resolve_inputs
from duplexloom.pipelines.shards import ShardResult
from duplexloom.schemas import Speaker
from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.sample import SampleMeta
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.utterance import Utterance
from tests.pipelines.manifest_rows import manifest_row


def test_summary_counts_family_substitutions():
    rows = [
        manifest_row(f"k{i}", family=fam, family_substitution=sub)
        for i, (fam, sub) in enumerate(
            [
                ("asr_human", "dialogue->asr_human"),
                ("asr_human", "think->asr_human"),
                ("asr_human", "dialogue->asr_human"),
                ("toolcall", None),
            ]
        )
    ]
    res = [ShardResult(0, tuple(rows), (), (), 4, False, 0)]
    s = build_summary(res, resolved_config={}, git_revision="x", config_digest="d")
    assert s["family_substitutions"] == {"dialogue->asr_human": 2, "think->asr_human": 1}


def test_bundled_seed_set_names():
    full = load_config(None, ["input.seeds=[bundled:full]"])
    assert sorted(resolve_inputs(seed_patterns(full))) == sorted(str(p) for p in FULL_SEEDS.glob("*.jsonl"))
    assert seed_patterns(load_config(None, [])) == [DEFAULT_SEEDS]


def _meta(key: str, family: str, actions=(), assistant: str | None = "Sure.") -> SampleMeta:
    utts = [
        Utterance(id="u0", speaker="user", lang="en", text="hi", audio_start_samples=0, audio_end_samples=100)
    ]
    if assistant is not None:
        utts.append(
            Utterance(
                id="a1",
                speaker="assistant",
                lang="en",
                text=assistant,
                audio_start_samples=200,
                audio_end_samples=300,
            )
        )
    spk = Speaker(id="s", role="user", display_name="S")
    return SampleMeta.model_validate(
        {
            "key": key,
            "family": family,
            "lang": "en",
            "system_prompt": "",
            "speakers": {"user": spk, "assistant": spk},
            "tokenizer": {"name": "builtin", "kind": "builtin"},
            "run_seed": 0,
            "seed_id": key,
            "timeline": Timeline(
                session_id=key,
                duration_samples=400,
                family=family,
                utterances=tuple(utts),
                actions=tuple(actions),
            ),
        }
    )


def test_content_stats_flags_what_issue_16_forbids():
    good = ActionObject(
        id="t", name="navigate", offset_samples=150, planning="go", parameters={"destination": "x"}
    )
    bad = ActionObject(id="t", name="car_alarm", offset_samples=150, parameters={})
    metas = [
        _meta("a", "toolcall", [good], "Okay, heading to x."),
        _meta("b", "toolcall", [bad], "Okay, heading to x."),
        _meta("c", "interpret", assistant=None),
        _meta("d", "think"),
    ]
    st = content_stats(metas, {"toolcall": 0.5, "interpret": 0.25, "think": 0.25, "pause": 0.0})
    assert st["tool_names_outside_spec9"] == ["car_alarm"]
    assert st["tool_calls_without_planning"] == 1
    assert st["toolcall_replies_distinct_pct"] == 50.0
    assert st["interpret_without_assistant_speech"] == 1
    assert st["think_without_think_actions"] == 1
    assert st["families_missing"] == [] and st["max_share_gap_points"] == 0.0
