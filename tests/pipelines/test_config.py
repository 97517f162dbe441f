"""The config tree: embedded defaults, YAML merge, --set overrides, clear errors for unknown keys."""

from __future__ import annotations

import pytest

from duplexloom.annotators.config import AnnotatorConfig
from duplexloom.pipelines.config import ConfigError, config_digest, load_config, parse_set, resolved_yaml
from duplexloom.timeline.config import TimelineConfig


def test_defaults_validate_including_stage_subconfigs():
    cfg = load_config()
    assert cfg.tts.backend == "espeak"
    assert isinstance(cfg.annotator, AnnotatorConfig) and cfg.annotator.backend == "offline"
    assert isinstance(cfg.timeline, TimelineConfig) and cfg.timeline.sample_rate > 0


def test_set_parses_yaml_scalars_and_lists():
    cfg = load_config(
        None, ["shards.num_shards=3", "serializer.layouts=[ta4]", "run_seed=7", "progress=false"]
    )
    assert cfg.shards.num_shards == 3 and isinstance(cfg.shards.num_shards, int)
    assert cfg.serializer.layouts == ("ta4",)
    assert cfg.run_seed == 7 and cfg.progress is False
    assert parse_set("a.b=1.5") == (["a", "b"], 1.5)


def test_yaml_file_merges_over_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("shards:\n  num_shards: 5\ntimeline:\n  barge_in_prob: 0.25\n")
    cfg = load_config(str(p), ["shards.resume=false"])
    assert cfg.shards.num_shards == 5 and cfg.shards.resume is False
    assert cfg.tts.batch_size == 16  # untouched default survives the merge
    assert cfg.timeline.barge_in_prob == 0.25


@pytest.mark.parametrize(
    "override",
    [
        "shards.num_shardz=3",
        "nonsense=1",
        "timeline.no_such_knob=1",
        "annotator.backendd=llm",
        "tts.backend=nope",
    ],
)
def test_unknown_keys_are_clear_errors(override):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    key = override.split("=")[0].split(".")[-1]
    assert key in str(e.value) or "nope" in str(e.value)


@pytest.mark.parametrize(
    "override, line",
    [
        ("annotator.backendd=llm", "annotator.backendd: unknown key"),
        ("annotator.llm.nope=1", "annotator.llm.nope: unknown key"),
        ("timeline.no_such_knob=1", "timeline.no_such_knob: unknown key"),
        ("timeline.barge_in_prob=2", "timeline.barge_in_prob: Input should be less than or equal to 1"),
        ("tts.options={nope: 1}", "tts.options.nope: unknown key"),
    ],
)
def test_typed_sections_fail_when_loaded_naming_the_dotted_key(override, line):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value) == f"invalid config:\n  {line}"


def test_unknown_section_key_is_one_line_exit_2(capsys):
    from duplexloom.pipelines.cli import main

    assert main(["--set", "timeline.no_such_knob=1", "--print-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "timeline.no_such_knob: unknown key" in err[0]


def test_typed_sections_are_recorded_as_given():
    """The typed ``annotator``/``timeline`` sections are dumped (config.yaml, summary, digest) with
    only the keys set and each value as written: ``1`` stays ``1`` though the field is a float."""
    cfg = load_config(None, ["timeline.barge_in_prob=1", "annotator.llm.model=m"])
    assert cfg.timeline.barge_in_prob == 1.0 and isinstance(cfg.timeline.barge_in_prob, float)
    tree = cfg.model_dump(mode="json")
    assert tree["annotator"] == {"backend": "offline", "llm": {"model": "m"}}
    assert set(tree["timeline"]) == {"family_mix", "barge_in_prob"} and tree["timeline"]["barge_in_prob"] == 1
    assert "barge_in_prob: 1\n" in resolved_yaml(cfg)
    # the same knobs written as floats are another config text, but the same typed values
    same = load_config(None, ["timeline.barge_in_prob=1.0", "annotator.llm.model=m"])
    assert same.timeline == cfg.timeline and config_digest(same) != config_digest(cfg)
    assert load_config().model_dump(mode="json")["annotator"] == {"backend": "offline"}


def test_bad_set_syntax():
    with pytest.raises(ConfigError):
        load_config(None, ["shards.num_shards"])


def test_digest_ignores_output_location_but_not_content():
    a = load_config(None, ["output.dir=/tmp/a"])
    b = load_config(None, ["output.dir=/tmp/b", "progress=false"])
    c = load_config(None, ["output.dir=/tmp/a", "run_seed=1"])
    assert config_digest(a) == config_digest(b)
    assert config_digest(a) != config_digest(c)


def test_cache_dir_is_local_on_every_worker():
    import tempfile

    assert load_config(None, ["output.dir=/data/run"]).cache_dir() == "/data/run/cache"
    remote = load_config(None, ["output.dir=gs://bucket/run"])
    assert remote.cache_dir().startswith(tempfile.gettempdir()) and "://" not in remote.cache_dir()
    with pytest.raises(ConfigError, match="must be a local path"):
        load_config(None, ["output.dir=gs://bucket/run", "output.cache_dir=gs://bucket/cache"])
