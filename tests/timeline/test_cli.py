"""``duplexloom render``: good input renders; bad input names the field and exits 2."""

import copy
import json
import subprocess
import sys

import pytest

from duplexloom.timeline.cli import main

EXAMPLE = {
    "session_id": "s1",
    "duration_s": 2.56,
    "family": "toolcall",
    "utterances": [
        {
            "id": "u1",
            "speaker": "user",
            "lang": "zh",
            "words": [{"text": "车里", "start_s": 0.02, "end_s": 0.15}],
        },
        {
            "id": "a1",
            "speaker": "assistant",
            "lang": "zh",
            "text": "明白了",
            "audio_start_s": 0.64,
            "audio_end_s": 1.40,
            "words": [
                {"text": "明白", "start_s": 0.64, "end_s": 0.95},
                {"text": "了", "start_s": 0.95, "end_s": 1.40},
            ],
        },
    ],
    "actions": [
        {
            "id": "x1",
            "name": "set_car_setting",
            "planning": "用户觉得冷",
            "parameters": {"setting": "AC", "value": "26"},
            "offset_s": 0.33,
        },
        {"id": "x2", "name": "interrupt", "offset_s": 0.90},
    ],
}


def _run(tmp_path, capsys, obj, *args, raw=None):
    path = tmp_path / "tl.json"
    path.write_text(raw if raw is not None else json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    rc = main([str(path), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_example_renders_trace_and_json(tmp_path, capsys):
    rc, out, err = _run(tmp_path, capsys, EXAMPLE)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 16  # ceil(2.56 s / 160 ms)
    assert "<|toolcall_begin|>" in out and "<interrupt>" in out and "T(明)" in lines[4]
    rc, out, _ = _run(tmp_path, capsys, EXAMPLE, "--format", "json", "--asr", "user", "--budget", "6")
    assert rc == 0
    chunks = json.loads(out)
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    assert set(chunks[0]) >= {"chunk", "user_words", "anchor", "action_text", "action_tokens"}
    assert max(c["action_tokens"] for c in chunks) <= 6
    assert "车里" in "".join(c["action_text"] for c in chunks)


def test_console_entry_point_runs(tmp_path):
    path = tmp_path / "tl.json"
    path.write_text(json.dumps(EXAMPLE, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "duplexloom.cli", "render", str(path), "--asr", "both"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("<|action_end|>") >= 16


def _mutate(fn):
    obj = copy.deepcopy(EXAMPLE)
    fn(obj)
    return obj


BAD = [
    (
        "overlap",
        lambda o: o["utterances"][1]["words"].__setitem__(1, {"text": "了", "start_s": 0.90, "end_s": 1.40}),
        "utterances[1].words[1].start_s",
        "word_overlap",
    ),
    (
        "word_after_end",
        lambda o: o["utterances"][0]["words"].append({"text": "好", "start_s": 2.5, "end_s": 2.7}),
        "utterances[0].words[1].end_s",
        "time_out_of_session",
    ),
    (
        "negative_time",
        lambda o: o["utterances"][0]["words"][0].__setitem__("start_s", -0.1),
        "utterances[0].words[0].start_s",
        "invalid_timeline",
    ),
    (
        "audio_after_end",
        lambda o: o["utterances"][1].__setitem__("audio_end_s", 3.0),
        "utterances[1].audio_end_s",
        "time_out_of_session",
    ),
    (
        "action_after_end",
        lambda o: o["actions"][1].__setitem__("offset_s", 9.0),
        "actions[1].offset_s",
        "time_out_of_session",
    ),
    (
        "unknown_tool",
        lambda o: o["actions"][0].__setitem__("name", "launch_rocket"),
        "actions[0].name",
        "unknown_tool",
    ),
    (
        "bad_args",
        lambda o: o["actions"][0]["parameters"].__setitem__("setting", "warp"),
        "actions[0].parameters",
        "invalid_arguments",
    ),
    (
        "missing_arg",
        lambda o: o["actions"][0]["parameters"].pop("value"),
        "actions[0].parameters",
        "invalid_arguments",
    ),
    (
        "marker_word",
        lambda o: o["utterances"][0]["words"][0].__setitem__("text", "车<|action_end|>"),
        "utterances[0].words[0].text",
        "marker_in_text",
    ),
    (
        "label_in_text",
        lambda o: o["utterances"][1].__setitem__("text", "明白<interrupt>"),
        "utterances[1].text",
        "marker_in_text",
    ),
    (
        "marker_planning",
        lambda o: o["actions"][0].__setitem__("planning", "冷<|toolcall_end|>"),
        "actions[0].planning",
        "marker_in_text",
    ),
    (
        "marker_args",
        lambda o: o["actions"][0]["parameters"].__setitem__("value", "<response>"),
        "actions[0].parameters",
        "marker_in_text",
    ),
    (
        "unknown_field",
        lambda o: o["actions"][0].__setitem__("offset", 0.3),
        "actions[0].offset",
        "invalid_timeline",
    ),
    ("missing_id", lambda o: o["utterances"][0].pop("id"), "utterances[0].id", "invalid_timeline"),
    (
        "bad_speaker",
        lambda o: o["utterances"][0].__setitem__("speaker", "robot"),
        "utterances[0].speaker",
        "invalid_timeline",
    ),
    (
        "outruns",
        lambda o: o["utterances"][1].__setitem__("text", "明白了明白了明白了"),
        "utterance 'a1'",
        "text_outruns_audio",
    ),
]


@pytest.mark.parametrize("name,mutate,field,code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_field(tmp_path, capsys, name, mutate, field, code):
    rc, out, err = _run(tmp_path, capsys, _mutate(mutate))
    assert rc == 2
    assert out == ""
    assert err.startswith(f"error: {field}"), err
    assert f"({code})" in err


def test_malformed_json(tmp_path, capsys):
    rc, out, err = _run(tmp_path, capsys, None, raw='{"session_id": "s1", "duration_s": ')
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and "malformed JSON at line 1" in err


def test_bad_tokenizer_and_budget(tmp_path, capsys):
    rc, _, err = _run(tmp_path, capsys, EXAMPLE, "--tokenizer", str(tmp_path / "missing.json"))
    assert rc == 2 and err.startswith("error: --tokenizer")
    rc, _, err = _run(tmp_path, capsys, EXAMPLE, "--budget", "0")
    assert rc == 2 and err.startswith("error: --budget")
