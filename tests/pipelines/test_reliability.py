"""Reliability (issue 17): hostile seed lines, bounded keys, a reused output folder, transient
rejects retried on resume, the config checked up front, one-line CLI errors, no leftovers."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duplexloom.pipelines.cli import environment_error
from duplexloom.pipelines.cli import main as cli_main
from duplexloom.pipelines.config import ConfigError, load_config, preflight
from duplexloom.pipelines.keys import MAX_KEY_CHARS, sample_key
from duplexloom.pipelines.outputs import read_manifest
from duplexloom.pipelines.run import DEFAULT_SEEDS, run
from duplexloom.pipelines.seeds import MAX_LINE_BYTES, ReadSeedLines, SeedLine, dedup, parse_line
from duplexloom.schemas.reject import TRANSIENT_CODES, is_transient
from duplexloom.timeline.sample_codec import decode_sample, iter_shard, sample_tar_blocks

HOSTILE = Path(__file__).with_name("hostile_seeds.jsonl")
PICK = ("en-qa-00", "zh-qa-03", "en-dlg-02")
# Anything a control character could become on the way: the C0/C1 ranges and DEL.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def seeds_subset(path: Path, ids=PICK) -> Path:
    lines = [line for line in open(DEFAULT_SEEDS, encoding="utf-8") if json.loads(line)["id"] in ids]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def cfg_for(out: Path, seeds: Path, *extra: str):
    return load_config(
        None,
        [f"output.dir={out}", f"input.seeds=['{seeds}']", "shards.num_shards=3", "progress=false", *extra],
    )


# ---- keys ------------------------------------------------------------------------------------


def test_keys_of_the_reported_collisions_differ_and_fit_in_tar():
    # The escaped key of "a/b" used to equal the id "a_b-c14cddc033" verbatim.
    ids = ["a/b", "a_b-c14cddc033", sample_key("a/b"), "x" * 81, "x" * 200, "Abc", "abc", "con", "CON"]
    keys = [sample_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    for k in keys:
        assert re.fullmatch(r"[a-z0-9_-]{1,64}", k) and len(k) <= MAX_KEY_CHARS
        assert k not in {"con", "prn", "aux", "nul"}
        # USTAR holds 100 characters of name: the longest member must encode without error.
        blocks = sample_tar_blocks(k, {"assistant.flac": b"x", "chunks.json": b"[]"})
        assert blocks.startswith(f"{k}.".encode())
    assert sample_key("en-qa-01") == "en-qa-01"  # plain ids stay readable


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=300), min_size=2, max_size=20, unique=True))
def test_keys_are_bounded_plain_and_injective(ids):
    keys = [sample_key(i) for i in ids]
    assert all(re.fullmatch(r"[a-z0-9_-]{1,64}", k) for k in keys)
    assert len(set(keys)) == len(ids)


# ---- hostile seed lines ----------------------------------------------------------------------


def hostile_lines() -> list[SeedLine]:
    lines = list(ReadSeedLines().process(str(HOSTILE)))
    extra = [
        b"[" * 200_000 + b"]" * 200_000,  # deep nesting: RecursionError inside json
        b'{"id": "big", "lang": "en", "turns": [], "topic": "' + b"a" * MAX_LINE_BYTES + b'"}',
    ]
    n = len(lines)
    return lines + [SeedLine("generated", n + i + 1, raw) for i, raw in enumerate(extra)]


def test_hostile_corpus_has_many_kinds_and_every_line_is_a_seed_or_a_data_reject():
    lines = hostile_lines()
    assert len(lines) >= 40
    parsed = [parse_line(line) for line in lines]
    seeds, rejects = dedup(parsed)
    assert len(seeds) + len(rejects) == len(lines)
    assert not [r for r in rejects if r.code == "internal_error"]
    assert all(not is_transient(r.code) for r in rejects)
    by_id = {p.basis: p for p in parsed}
    expected = {
        "nul": "control_char_in_text",
        "ansi": "control_char_in_text",
        "del": "control_char_in_text",
        "c1": "control_char_in_text",
        "marker": "marker_in_text",
        "split-marker": "marker_in_text",
    }
    for seed_id, code in expected.items():
        assert by_id[seed_id].reject is not None and by_id[seed_id].reject.code == code, seed_id
    codes_at = {p.lineno: p.reject.code for p in parsed if p.reject is not None and p.path != "generated"}
    text = HOSTILE.read_bytes().split(b"\n")

    def code_of_line(needle: bytes) -> str:
        return codes_at[next(i for i, raw in enumerate(text, start=1) if needle in raw)]

    assert code_of_line(b'"nan"') == "invalid_json"  # NaN no longer becomes null
    assert code_of_line(b'"huge-int"') == "invalid_json"
    assert code_of_line(b'"huge-float"') == "invalid_json"
    assert code_of_line(b'"deep"') == "invalid_json"
    assert code_of_line(b'"lone-high"') == "invalid_encoding"
    assert [p.reject.code for p in parsed[-2:]] == ["invalid_json", "line_too_long"]
    # A BOM costs nothing; CR/LF/TAB inside a text become spaces.
    assert by_id["bom-first"].seed is not None
    crlf = by_id["crlf"].seed
    assert crlf is not None and not CONTROL.search(crlf.turns[0].text)


def test_an_endless_line_is_one_reject_and_the_next_line_still_counts(tmp_path):
    path = tmp_path / "seeds.jsonl"
    good = json.dumps({"id": "after", "lang": "en", "turns": [{"role": "user", "text": "Hi."}]})
    with open(path, "wb") as f:
        f.write(b'{"id": "endless", "text": "' + b"a" * (2 * MAX_LINE_BYTES + 17) + b'"}\r\n')
        f.write(good.encode() + b"\n\n")
    lines = list(ReadSeedLines().process(str(path)))
    assert [(line.lineno, len(line.raw) <= MAX_LINE_BYTES + 1) for line in lines] == [(1, True), (2, True)]
    parsed = [parse_line(line) for line in lines]
    assert parsed[0].reject.code == "line_too_long" and parsed[1].seed.id == "after"


def test_hostile_corpus_never_crashes_a_run_and_no_control_character_reaches_a_sample(tmp_path):
    seeds = tmp_path / "hostile.jsonl"
    shutil.copy(HOSTILE, seeds)
    summary, _ = run(cfg_for(tmp_path / "out", seeds, "qa_report=false"))
    acc = summary["accounting"]
    assert acc["balanced"] and acc["seeds_in"] == len(list(ReadSeedLines().process(str(seeds))))
    rejects = [json.loads(x) for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    assert summary["internal_errors"] == 0, [
        r["detail"][:300] for r in rejects if r["code"] == "internal_error"
    ]
    assert not [r for r in rejects if r["code"] in TRANSIENT_CODES]
    keys = []
    for tar in sorted((tmp_path / "out/shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_shard(f):
                keys.append(key)
                s = decode_sample(key, members)
                for line in s.trace.split("\n"):
                    assert not CONTROL.search(line), (key, line)
                for c in json.loads(members["chunks.json"]):
                    for v in c.values():
                        assert not (isinstance(v, str) and CONTROL.search(v)), (key, c)
                assert "31m" not in s.trace
    assert acc["samples_out"] == len(keys) >= 8
    # Both ids of the reported key collision are samples, under different keys.
    assert {sample_key("a/b"), sample_key("a_b-c14cddc033")} <= set(keys)


# ---- config and CLI --------------------------------------------------------------------------


def test_preflight_finds_config_mistakes_before_any_work(tmp_path):
    seeds = seeds_subset(tmp_path / "s.jsonl")
    a_file = tmp_path / "a_file"
    a_file.write_text("not json")
    cases = {
        "serializer.layouts=[ta4,bogus]": "unknown layout",
        # asr_sides, or whatever per-family table replaces it: a bad side is refused either way.
        "serializer.asr_sides=[robot]": "unknown side|unknown key",
        f"serializer.tokenizer={tmp_path / 'missing.json'}": "no such file",
        f"serializer.tokenizer={a_file}": "not a readable tokenizer.json",
        f"output.dir={a_file}": "is not a folder",
        f"output.dir={a_file}/sub": "is not a folder",
        f"output.cache_dir={a_file}": "is not a folder",
        f"tts.speaker_library={tmp_path / 'nope.json'}": "no such file",
    }
    for expr, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            preflight(cfg_for(tmp_path / "out", seeds, expr))
        with pytest.raises(ConfigError, match=message):
            run(cfg_for(tmp_path / "out", seeds, expr))
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "{file}"],
        ["--out", ""],
        ["--out", "{file}/sub"],
        ["--out", "nosuchfs://bucket/run"],  # like gs:// without the gcp extra
        ["--seeds", "{dir}"],
        ["--runner=NoSuchRunner"],
        ["--set", "serializer.layouts=[bogus]"],
        ["--set", "serializer.asr_sides=[robot]"],
        ["--set", "serializer.tokenizer={file}"],
        ["--set", "shards.num_shards=many"],
        ["--config", "{dir}/missing.yaml"],
        ["--config", "{bad_yaml}"],
        ["--set", "no_equals_sign"],
        ["--set"],
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("{}")
    (tmp_path / "dir").mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("shards: [unclosed\n  num_shards: 3\n")
    argv = [a.format(file=a_file, dir=tmp_path / "dir", bad_yaml=bad_yaml) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    try:
        rc = cli_main(argv + ["--quiet"])
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_file_size_limit_mid_run_is_one_line_and_exit_2(tmp_path):
    """A real environment failure inside a Beam step (like a full disk): files over 64 KiB cannot
    be written (RLIMIT_FSIZE), so spooling the first utterance fails with EFBIG."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    seeds = seeds_subset(tmp_path / "s.jsonl", ("en-qa-00",))
    argv = ["--out", str(tmp_path / "o"), "--seeds", str(seeds), "--set", "tts.cache=false"]
    proc = subprocess.run(
        [sys.executable, "-m", "duplexloom.cli", "run", *argv, "--set", "qa_report=false", "--quiet"],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("duplexloom run: the run stopped:") and "File too large" in last


def test_a_full_disk_or_a_permission_error_is_an_environment_error():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("a Beam stage failed") from inner
    except RuntimeError as outer:
        found = environment_error(outer)
    assert found is not None and found.errno == errno.ENOSPC
    assert environment_error(RuntimeError("x [Errno 13] Permission denied: '/o'")).errno == errno.EACCES
    assert environment_error(RuntimeError("a bug")) is None
    assert environment_error(FileNotFoundError(errno.ENOENT, "gone")) is None


# ---- a reused output folder ------------------------------------------------------------------


def shard_keys(out: Path) -> list[str]:
    keys = []
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            keys += [k for k, _ in iter_shard(f)]
    return sorted(keys)


def test_a_reused_output_folder_holds_exactly_the_last_run(tmp_path):
    out = tmp_path / "out"
    big = seeds_subset(tmp_path / "big.jsonl", ("en-qa-00", "zh-qa-03", "en-dlg-02", "en-tool-01"))
    run(cfg_for(out, big, "shards.num_shards=8", "qa_report=false"))
    assert len(list((out / "shards").glob("*.tar"))) >= 3
    # Leftovers of a killed writer and of a crashed run's spool.
    (out / "shards/000001.tar.tmp-0123456789abcdef").write_bytes(b"half a tar")
    (out / "manifest.parquet.tmp-0123").write_bytes(b"half")
    (out / "_work/000000").mkdir(parents=True)
    (out / "_work/000000/x.blocks").write_bytes(b"junk")
    (out / "shards/notes.txt").write_text("not ours: kept")
    small = seeds_subset(tmp_path / "small.jsonl", ("zh-qa-03", "en-qa-00"))
    summary, _ = run(cfg_for(out, small, "shards.num_shards=2", "qa_report=false"))
    manifest = sorted(r.key for r in read_manifest(str(out / "manifest.parquet")))
    assert shard_keys(out) == manifest == sorted(sample_key(i) for i in ("zh-qa-03", "en-qa-00"))
    assert summary["accounting"]["samples_out"] == 2
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        *sorted(p.name for p in (out / "shards").glob("*.tar")),
        "notes.txt",
    ]
    assert {p.name for p in (out / "state").iterdir()} <= {"000000.json", "000001.json"}
    assert not list(out.rglob("*.tmp-*")) and not (out / "_work").exists()


# ---- transient rejects -----------------------------------------------------------------------


def test_transient_rejects_exit_4_and_are_retried_on_resume(tmp_path, capsys, monkeypatch):
    from tests.annotators.fake_openai_server import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    seeds = tmp_path / "s.jsonl"  # topic seeds: each needs the LLM to write its dialogue
    topics = ("electric cars", "mountain hiking", "baking bread")
    seeds.write_text(
        "".join(json.dumps({"id": f"t{i}", "lang": "en", "topic": t}) + "\n" for i, t in enumerate(topics))
    )
    out = tmp_path / "out"
    with FakeOpenAIServer(script={"*": ["500"] * 10_000}) as srv:
        argv = [
            "--out",
            str(out),
            "--seeds",
            str(seeds),
            "--quiet",
            "--set",
            "qa_report=false",
            "--set",
            "shards.num_shards=2",
            "--set",
            "annotator.backend=llm",
            "--set",
            f"annotator.llm.base_url={srv.base_url}",
            "--set",
            "annotator.llm.max_attempts=2",
            "--set",
            "annotator.llm.backoff_initial_s=0.01",
            "--set",
            "annotator.llm.backoff_max_s=0.02",
            "--set",
            "timeline.family_mix={dialogue: 1.0}",
        ]
        assert cli_main(argv) == 4  # a total outage: every seed rejected llm_unavailable
        err = capsys.readouterr().err
        assert "transient" in err and "rerun the same command" in err
        summary = json.loads((out / "summary.json").read_text())
        assert summary["transient_rejects"] == summary["accounting"]["seeds_in"] == len(topics)
        srv.script = {}  # the service is back
        n_before = len(srv.requests)
        assert cli_main(argv) == 0, capsys.readouterr().err
        assert len(srv.requests) > n_before  # the resumed run asked again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transient_rejects"] == 0 and summary["accounting"]["samples_out"] >= 2
    assert "llm_unavailable" not in (out / "rejects.jsonl").read_text()


def test_transient_codes_are_a_closed_list_and_everything_else_is_final():
    assert is_transient("llm_unavailable") and is_transient("tts_engine_crash")
    assert is_transient("internal_error")
    for code in ("invalid_json", "semantic_bad_timing", "align_poor", "near_duplicate", "new_code"):
        assert not is_transient(code)


def test_a_run_that_raises_leaves_no_spool(tmp_path, monkeypatch):
    import duplexloom.pipelines.shards as shards

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the shard writer")

    # The samples are spooled by then (SpoolSamples runs before WriteShards).
    monkeypatch.setattr(shards, "write_shard_file", broken)
    out = tmp_path / "out"
    seeds = seeds_subset(tmp_path / "s.jsonl")
    with pytest.raises(Exception, match="a bug in the shard writer"):
        run(cfg_for(out, seeds, "qa_report=false"))
    assert out.exists() and not (out / "_work").exists()


# ---- model handlers in multi-threaded workers (the multiprocessing determinism test) -----------


@pytest.fixture(scope="module")
def spoken_item():
    from duplexloom.pipelines.tts import Spoken
    from duplexloom.schemas.clip import SpeakRequest
    from duplexloom.tts_adapters import get_tts
    from duplexloom.tts_adapters.speakers import load_library

    speaker = load_library(None).speakers[0]
    text = "hello there my friend"
    result = get_tts("espeak", sample_rate=16000).synthesize([text], speaker, "en")[0]
    req = SpeakRequest(session_id="s1", utterance_id="u1", role="user", lang="en", text=text, speaker=speaker)
    return Spoken(req, result)


def test_an_aligner_handler_copy_works_with_the_model_another_copy_loaded(spoken_item, tmp_path):
    """Beam shares a loaded model between the DoFn copies of a process and calls load_model on
    one copy only; the other copies (other bundle threads) must still work."""
    import pickle

    from duplexloom.pipelines.align import AlignerModelHandler

    handler = AlignerModelHandler("tiny", {}, 4, True, "reject", str(tmp_path / "align"), 1)
    first, second = pickle.loads(pickle.dumps(handler)), pickle.loads(pickle.dumps(handler))
    model = first.load_model()
    a = first.run_inference([spoken_item], model)[0].inference.clip
    b = second.run_inference([spoken_item], model)[0].inference.clip
    assert a.reject is None and a.words and a.words == b.words


def test_model_handlers_set_torch_threads_on_the_thread_that_runs_them(spoken_item, tmp_path):
    """torch's intra-op thread count is per thread (OpenMP): a bundle thread that used torch with
    another count keeps it after set_num_threads on the loading thread, and the aligner's
    log-probabilities differ between 1 and 2 threads (seen: 7.6e-6 on a 6 s track)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from duplexloom.pipelines.align import AlignerModelHandler
    from duplexloom.pipelines.tts import TTSModelHandler

    aligner = AlignerModelHandler("tiny", {}, 4, True, "reject", None, 1)
    tts = TTSModelHandler("espeak", {"sample_rate": 16000}, None, 4, "reject", 1)
    try:
        for handler, item in ((aligner, spoken_item), (tts, spoken_item.item)):
            torch.set_num_threads(2)
            with ThreadPoolExecutor(1) as pool:  # a bundle thread that used torch before the load
                assert pool.submit(torch.get_num_threads).result() == 2
                model = handler.load_model()  # on another thread: sets 1 there
                assert torch.get_num_threads() == 1 and pool.submit(torch.get_num_threads).result() == 2
                pool.submit(handler.run_inference, [item], model).result()
                assert pool.submit(torch.get_num_threads).result() == 1
    finally:
        torch.set_num_threads(1)


def test_annotation_texts_refuse_control_characters_whatever_wrote_them():
    """The LLM's texts go through the same records: an ANSI escape or a NUL is a validation error
    (the client asks again, then rejects), never a word on a track or the action channel."""
    from pydantic import ValidationError

    from duplexloom.schemas.annotation import AnnotatedAction, AnnotatedTurn

    for bad in ("\x1b[31mred", "nul\x00", "del\x7f", "csi\x9b"):
        with pytest.raises(ValidationError, match="control character"):
            AnnotatedTurn(role="user", text=bad)
    with pytest.raises(ValidationError, match="control character"):
        AnnotatedAction(name="open_app", anchor="open", planning="plan\x1b")
    assert AnnotatedTurn(role="user", text="two\nlines\tand a tab").text == "two\nlines\tand a tab"
