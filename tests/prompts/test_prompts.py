import json
import re

import pytest

from duplexloom.prompts import (
    FAMILIES,
    SCHEMA_KEYWORDS,
    label_phrases,
    load_catalog,
    prompt_hashes,
    schema_errors,
    system_prompt,
    validate_arguments,
)
from duplexloom.schemas import RejectError
from duplexloom.schemas.tokens import find_markers

SPEC_NAMES = [
    "open_car_setting",
    "set_car_setting",
    "navigate",
    "play_media",
    "search_food",
    "query_weather",
    "make_call",
    "set_car_alarm",
    "set_pet_car_setting",
    "change_navigation_route",
    "search_along_route",
    "generate_text_resource",
]


def _walk(schema, path="$"):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


def test_catalog_has_50_snake_case_functions_with_both_languages():
    cat = load_catalog()
    assert len(cat) == 50
    for name in SPEC_NAMES:
        assert name in cat
    for name, spec in cat.items():
        assert re.fullmatch(r"[a-z][a-z_]*[a-z]", name), name
        assert spec.name == name
        assert re.search(r"[\u4e00-\u9fff]", spec.description_zh), name
        assert re.search(r"[A-Za-z]{3}", spec.description_en), name
        assert not find_markers(spec.description_zh + spec.description_en)


def test_every_schema_is_a_typed_closed_object_in_the_supported_subset():
    for name, spec in load_catalog().items():
        root = spec.parameters
        assert root["type"] == "object" and root["additionalProperties"] is False, name
        assert set(root["required"]) <= set(root["properties"]), name
        for path, sub in _walk(root):
            assert set(sub) <= SCHEMA_KEYWORDS, (name, path, set(sub) - SCHEMA_KEYWORDS)
            assert "type" in sub, (name, path)
            if "pattern" in sub:
                re.compile(sub["pattern"])


def test_example_arguments_validate_and_bad_ones_are_rejected():
    validate_arguments("set_car_setting", {"setting": "AC", "value": "26"})
    validate_arguments("navigate", {"destination": "上海虹桥站", "route_preference": "fastest"})
    validate_arguments("next_track", None)
    with pytest.raises(RejectError) as e:
        validate_arguments("launch_rocket", {})
    assert e.value.code == "unknown_tool"
    cases = [
        ("set_car_setting", {"setting": "AC"}, "arguments.value: required"),
        ("set_car_setting", {"setting": "warp_drive", "value": "1"}, "arguments.setting"),
        ("increase_car_setting", {"setting": "AC", "amount": 99}, "above the maximum"),
        ("increase_car_setting", {"setting": "AC", "amount": True}, "expected integer"),
        ("navigate", {"destination": "x", "speed": 3}, "arguments.speed: unknown argument"),
        ("make_call", {"phone_number": "call me"}, "does not match"),
        ("save_car_setting", {"profile_name": "a", "settings": ["AC", "nope"]}, r"arguments.settings\[1\]"),
    ]
    for name, args, needle in cases:
        with pytest.raises(RejectError) as e:
            validate_arguments(name, args)
        assert e.value.code == "invalid_arguments"
        assert re.search(needle, e.value.detail), (name, e.value.detail)


def test_schema_errors_number_accepts_int_and_float():
    schema = {"type": "number", "minimum": 64, "maximum": 108}
    assert schema_errors(98.5, schema) == []
    assert schema_errors(100, schema) == []
    assert schema_errors(120, schema)


def test_label_phrases_hold_the_spec_chinese_lists():
    assert label_phrases("response", "zh") == ["用户发言结束", "检测到表达完毕", "接收到完整内容"]
    assert label_phrases("interrupt", "zh")[0] == "检测到用户插话"
    assert "用户仅做确认" in label_phrases("backchannel", "zh")
    for label in ("response", "interrupt", "backchannel"):
        en = label_phrases(label, "en")
        assert len(en) >= 3 and all(p.isascii() and not find_markers(p) for p in en)
    with pytest.raises(KeyError):
        label_phrases("shout", "zh")


def test_system_prompts_for_every_family_and_name_substitution():
    assert system_prompt("dialogue", "zh", "小云") == ""
    assert system_prompt("interpret", "zh", "小云") == "请翻译用户说的内容。"
    assert system_prompt("pause", "zh", "小云") == "你是一个 AI 语音助手,用 小云 的声音来说话。"
    assert system_prompt("interrupt", "en", "{Ava}").count("{Ava}") == 1
    for fam in FAMILIES:
        for lang in ("zh", "en"):
            assert "{}" not in system_prompt(fam, lang, "N")


def test_prompt_hashes_are_sha256_of_the_files():
    hashes = prompt_hashes()
    assert set(hashes) == {"catalog/tools.json", "labels.json", "system_prompts.json"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values())
    from importlib import resources

    raw = resources.files("duplexloom.prompts").joinpath("labels.json").read_bytes()
    assert json.loads(raw)["zh"]["response"][0] == "用户发言结束"


def test_catalog_names_are_exactly_spec_section_9():
    """SPEC section 9 lists DuplexSLA's 50 function names; the catalog must hold exactly those."""
    from pathlib import Path

    spec = (Path(__file__).parents[2] / "docs" / "SPEC.md").read_text(encoding="utf-8")
    section = spec.split("## 9. Tool calling", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`([^`]+)`", section.split("match is not penalised:", 1)[1])
    names = [n for chunk in listed for n in chunk.split()]
    assert len(names) == 50 and len(set(names)) == 50
    assert set(names) == set(load_catalog())
