"""Family choice, presets, system prompts and the canonical assistant voices."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from duplexloom.prompts import system_prompt
from duplexloom.schemas import RejectError
from duplexloom.timeline.config import FAMILIES, FAMILY_MIX_PRESETS, TimelineConfig
from duplexloom.timeline.families import choose_family, pick_speakers
from duplexloom.timeline.merge import plan_session
from tests.timeline.test_merge_fixtures import en_annotation, library, tool_annotation, zh_annotation


def test_seed_family_wins_and_unknown_is_rejected():
    cfg = TimelineConfig()
    assert choose_family("pause", cfg, 1, "s") == "pause"
    with pytest.raises(RejectError) as e:
        choose_family("karaoke", cfg, 1, "s")
    assert e.value.code == "unknown_family"


@pytest.mark.parametrize("preset", ["pretrain", "posttrain"])
def test_mix_follows_the_preset(preset):
    cfg = TimelineConfig.preset(preset)
    n = 3000
    counts = Counter(choose_family(None, cfg, 9, f"s{i}") for i in range(n))
    for fam, w in FAMILY_MIX_PRESETS[preset].items():
        # binomial 4-sigma band
        sigma = (w * (1 - w) / n) ** 0.5
        assert abs(counts[fam] / n - w) < 4 * sigma + 1e-9, (fam, counts[fam] / n, w)


def test_mix_is_configuration():
    cfg = TimelineConfig(family_mix={"interrupt": 1.0, "dialogue": 0.0})
    assert {choose_family("auto", cfg, 1, f"s{i}") for i in range(50)} == {"interrupt"}
    assert choose_family(None, cfg, 1, "x") == choose_family(None, cfg, 1, "x")
    with pytest.raises(ValidationError):
        TimelineConfig(family_mix={"nonsense": 1.0})
    with pytest.raises(ValidationError):
        TimelineConfig(unknown_knob=1)


def test_system_prompt_and_canonical_voices():
    lib = library()
    assert len(lib.assistants) == 18
    names = set()
    for fam in FAMILIES:
        for lang in ("zh", "en"):
            plan = plan_session(_ann(fam, lang), TimelineConfig(), 3, library=lib)
            asst = lib.by_id(plan.assistant_speaker_id)
            assert asst.role == "assistant" and asst in lib.assistants
            assert plan.system_prompt == system_prompt(fam, lang, asst.display_name)
            names.add(asst.display_name)
    assert "{}" not in plan.system_prompt
    user, asst = pick_speakers(3, "sess", "en", lib)
    assert user.role == "user" and asst.role == "assistant" and user.id != asst.id


def _ann(fam, lang):
    if fam == "toolcall":
        return tool_annotation(lang, fam)
    return en_annotation(fam) if lang == "en" else zh_annotation(fam)


def test_any_seed_into_any_family_shares_follow_the_mix():
    """The bundled full seed set drawn through the demo mix: every seed serves its drawn family
    offline (no substitution needed), and the shares are within sampling error of the mix."""
    import json
    from collections import Counter

    from duplexloom.annotators import AnnotatorConfig, annotate_batch
    from duplexloom.pipelines.config import load_config
    from duplexloom.pipelines.run import FULL_SEEDS
    from duplexloom.schemas import Seed
    from duplexloom.schemas.annotation import Annotation

    cfg = load_config(None, [])
    tcfg = cfg.timeline
    seeds = [
        Seed(**json.loads(line))
        for p in sorted(FULL_SEEDS.glob("*.jsonl"))
        for line in p.open(encoding="utf-8")
    ]
    drawn = {s.id: choose_family(s.family, tcfg, cfg.run_seed, s.id) for s in seeds}
    results = annotate_batch(
        seeds, AnnotatorConfig(), run_seed=cfg.run_seed, families=[drawn[s.id] for s in seeds]
    )
    assert all(isinstance(r, Annotation) for r in results), [
        r for r in results if not isinstance(r, Annotation)
    ][:3]
    assert all(r.family == drawn[r.seed_id] and "family_substitution" not in r.provenance for r in results)
    shares = Counter(r.family for r in results)
    total = sum(tcfg.family_mix.values())
    for fam, w in tcfg.family_mix.items():
        assert abs(100 * shares[fam] / len(results) - 100 * w / total) < 6, (fam, shares)
    kinds = {(s.kind, drawn[s.id]) for s in seeds}
    assert {("qa", "toolcall"), ("qa", "interpret"), ("qa", "think"), ("tool_request", "interrupt")} <= kinds
