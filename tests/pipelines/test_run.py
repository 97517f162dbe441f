"""The whole job on a tiny seed set with the real stages (offline annotator, espeak-ng, bundled
aligner) on the DirectRunner: accounting, shard contents, determinism, resume and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from duplexloom.pipelines.cli import main as cli_main
from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.outputs import read_manifest
from duplexloom.pipelines.run import DEFAULT_SEEDS, run
from duplexloom.timeline.sample_codec import decode_sample, iter_shard

PICK = ("en-qa-00", "zh-qa-03", "en-tool-01", "zh-dlg-01", "en-dlg-02")
BAD = Path(DEFAULT_SEEDS).with_name("bad_seeds.jsonl")


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory) -> Path:
    lines = [line for line in open(DEFAULT_SEEDS, encoding="utf-8") if json.loads(line)["id"] in PICK]
    huge = json.dumps({"id": "huge", "lang": "en", "turns": [{"role": "user", "text": "word " * 210_000}]})
    p = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    p.write_text("".join(lines) + BAD.read_text(encoding="utf-8") + huge + "\n", encoding="utf-8")
    return p


def n_seed_lines(p: Path) -> int:
    return sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    # The first run's cache; the determinism tests give their reruns fresh caches of their own, so
    # byte-identity cannot come from sharing cached audio or alignments.
    return tmp_path_factory.mktemp("cache")


def run_into(out: Path, seeds: Path, *extra: str, beam_args=(), cache: Path | None = None):
    cfg = load_config(
        None,
        [
            f"output.dir={out}",
            f"input.seeds=['{seeds}']",
            "shards.num_shards=3",
            f"output.cache_dir={cache or CACHE[0]}",
            "progress=false",
            *extra,
        ],
    )
    return run(cfg, list(beam_args))[0]


def shard_digests(out: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "shards").glob("*.tar"))
    }


CACHE: list[Path] = []  # set by first_run: every run of this module shares one cache


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, seeds_file, cache_dir):
    CACHE[:] = [cache_dir]
    out = tmp_path_factory.mktemp("run1")
    return out, run_into(out, seeds_file)


def test_every_line_ends_in_a_sample_or_a_reject(first_run, seeds_file):
    out, summary = first_run
    acc = summary["accounting"]
    assert acc["seeds_in"] == n_seed_lines(seeds_file)
    assert acc["balanced"] and acc["samples_out"] + acc["rejects"] == acc["seeds_in"]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == acc["rejects"]
    codes = {r["code"] for r in rejects if r["stage"] == "seeds"}
    assert {
        "invalid_json",
        "missing_field",
        "empty_text",
        "unsupported_language",
        "marker_in_text",
        "duplicate_id",
        "invalid_id",
        "text_too_long",
    } <= codes
    assert all(r["record_id"] and r["code"] for r in rejects)
    assert summary["internal_errors"] == 0, [
        r["detail"][:500] for r in rejects if r["code"] == "internal_error"
    ]
    assert acc["samples_out"] >= 3  # most good seeds survive the real stages
    assert not (out / "_work").exists()  # the spool is gone once the shards are written


def test_shards_manifest_and_samples_agree(first_run):
    out, summary = first_run
    keys, audio_s = [], {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                audio_s[key] = len(s.user_audio) / s.meta.timeline.sample_rate
                assert (
                    len(s.user_audio)
                    == len(s.assistant_audio)
                    == len(s.chunks) * s.meta.timeline.sample_rate * 160 // 1000
                )
                assert s.meta.tokenizer.name and s.trace.count("\n") + 1 >= len(s.chunks)
                keys.append(key)
    table = read_manifest(str(out / "manifest.parquet"))
    assert sorted(keys) == [r.key for r in table]
    assert {r.key: r.duration_s for r in table} == pytest.approx(audio_s)  # the audio's duration
    assert len(keys) == summary["accounting"]["samples_out"]
    assert summary["audio_hours"]["sessions"] > 0 and summary["config"]["shards"]["num_shards"] == 3
    assert (out / "config.yaml").exists() and summary["versions"]["apache-beam"]


@pytest.mark.slow
def test_rerun_is_byte_identical_and_resume_skips(first_run, seeds_file, tmp_path):
    out1, summary1 = first_run
    out2 = tmp_path / "run2"
    summary2 = run_into(out2, seeds_file, cache=tmp_path / "fresh-cache")
    assert shard_digests(out1) == shard_digests(out2) and shard_digests(out1)
    assert (out1 / "manifest.parquet").read_bytes() == (out2 / "manifest.parquet").read_bytes()
    assert (out1 / "rejects.jsonl").read_bytes() == (out2 / "rejects.jsonl").read_bytes()
    # Resume into the same directory: every shard is finished, nothing is recomputed, nothing lost.
    before = {p: p.stat().st_mtime_ns for p in (out2 / "shards").glob("*.tar")}
    summary3 = run_into(out2, seeds_file, cache=tmp_path / "fresh-cache")
    assert summary3["shards"]["skipped_on_resume"] == summary3["shards"]["count"] == len(before)
    assert {p: p.stat().st_mtime_ns for p in (out2 / "shards").glob("*.tar")} == before
    assert summary3["accounting"] == summary2["accounting"] == summary1["accounting"]
    # A changed setting invalidates the finished shards: they are recomputed.
    summary4 = run_into(out2, seeds_file, "serializer.budget=12", cache=tmp_path / "fresh-cache")
    assert summary4["shards"]["skipped_on_resume"] == 0


@pytest.mark.slow
def test_multiprocessing_runner_gives_the_same_bytes(first_run, seeds_file, tmp_path):
    out1, _ = first_run
    out = tmp_path / "mp"
    run_into(
        out,
        seeds_file,
        beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        cache=tmp_path / "mp-cache",
    )
    assert shard_digests(out) == shard_digests(out1)


@pytest.mark.slow
def test_warm_cache_reruns_give_the_same_bytes_with_and_without_lazy_audio(
    first_run, seeds_file, tmp_path, monkeypatch
):
    """From the first run's warm caches: in lazy mode (one machine) cached utterances travel as
    paths into the TTS cache and alignment hits never read audio; without it (a distributed
    runner's worker-local cache) they travel as samples through the spool. Same bytes either way."""
    import duplexloom.pipelines.run as run_mod

    out1, _ = first_run
    run_into(tmp_path / "lazy", seeds_file)
    assert shard_digests(tmp_path / "lazy") == shard_digests(out1)
    monkeypatch.setattr(run_mod, "shared_cache", lambda p, cache: False)
    run_into(tmp_path / "eager", seeds_file)
    assert shard_digests(tmp_path / "eager") == shard_digests(out1)


def test_shared_cache_only_for_a_local_cache_on_one_machine(tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineRunner

    from duplexloom.pipelines.run import shared_cache

    class Distributed(PipelineRunner):  # any runner but the local ones: workers on other machines
        pass

    local = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    assert shared_cache(local, str(tmp_path))
    assert not shared_cache(local, None)
    assert not shared_cache(local, "gs://bucket/cache/tts")
    assert not shared_cache(beam.Pipeline(runner=Distributed()), str(tmp_path))


def test_layouts_are_written_as_extra_members(first_run, seeds_file, tmp_path):
    out = tmp_path / "layouts"
    summary = run_into(out, seeds_file, "serializer.layouts=[ta4,lws,ct]")
    assert summary["accounting"]["balanced"] and summary["internal_errors"] == 0
    seen = 0
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                units = json.loads(s.extra["lws.json"])
                frames = json.loads(s.extra["ct.json"])
                # lws: 1 s units covering the session; ct: one token per 80 ms frame, with a <BOS>
                # for every assistant reply that was spoken.
                sr = s.meta.timeline.sample_rate
                assert len(units) == -(-s.meta.timeline.duration_samples // sr)
                assert len(frames) >= s.meta.timeline.duration_samples // (sr * 80 // 1000)
                n_replies = sum(1 for u in s.meta.timeline.utterances if u.speaker == "assistant")
                assert frames.count("<BOS>") == n_replies
                seen += 1
    assert seen == summary["accounting"]["samples_out"] > 0


def test_cli_refuses_unreadable_input_clearly(tmp_path, capsys):
    rc = cli_main(["--out", str(tmp_path / "o"), "--seeds", str(tmp_path / "nope.jsonl")])
    assert rc == 2
    assert "matches no file" in capsys.readouterr().err


def test_cli_rejects_unknown_config_key(tmp_path, capsys):
    assert cli_main(["--out", str(tmp_path / "o"), "--set", "shards.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_every_shipped_sample_passed_the_semantic_self_check(first_run):
    """SPEC 17 as a stage: the summary scores every sample from its audio; what is shipped passed
    every check that applied to it, and its action channel is the one its family prescribes."""
    from duplexloom.qa.semantic import check_sample
    from duplexloom.timeline.families import FAMILY_CHANNELS

    out, summary = first_run
    sem = summary["semantic"]
    assert sem["scored"] == summary["stages"]["semantic"]["in"] > 0
    assert sem["rejected"] == summary["stages"]["semantic"]["rejected"]
    assert sem["checks"]["channel"]["n"] >= summary["accounting"]["samples_out"]
    assert sem["measured"]["response_gap_s"]["n"] > 0 and sem["measured"]["response_gap_s"]["reference"]
    assert summary["action_channel"]["dialogue"] == {"channel": [], "override": False}
    assert summary["drawn_histograms"]["response_gap_s"]["n"] > 0
    for shard in sorted((out / "shards").glob("*.tar")):
        with open(shard, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                assert s.meta.action_channel == FAMILY_CHANNELS[s.meta.family]
                rep = check_sample(
                    key,
                    s.meta.timeline,
                    list(s.chunks),
                    s.user_audio,
                    s.assistant_audio,
                    action_channel=s.meta.action_channel,
                )
                assert rep.passed, rep.describe()


def test_summary_reports_the_alignment_quality_distribution(first_run):
    _, summary = first_run
    q = summary["align_quality"]
    assert q["utterances"] > 10 and q["align_poor"] >= summary["reject_codes"].get("align/align_poor", 0)
    for score in ("speech_in_spans", "mostly_silent_share", "confidence"):
        assert sum(q[score]["counts"]) == q["utterances"]
    # Word ends at the end of the sound: almost all speech lies inside some word span.
    assert q["speech_in_spans"]["mean"] >= 0.97


def test_think_family_cognition_reaches_every_layout(first_run, seeds_file, tmp_path):
    """Issue 20's done-criteria on a real run: think actions on the TA4 channel, LWS listening text
    while the user speaks, <|turn_eos|> only inside spoken segments, a chain before every reply."""
    out = tmp_path / "think"
    summary = run_into(out, seeds_file, "timeline.family_mix={think: 1.0}", "serializer.layouts=[ta4,lws,ct]")
    assert summary["accounting"]["balanced"] and summary["internal_errors"] == 0
    n_think = listening = with_text = 0
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                tl = s.meta.timeline
                if tl.family != "think":
                    continue
                n_think += 1
                thinks = {a.id for a in tl.actions if a.name == "think"}
                on_channel = {p.action_id for ch in s.chunks for p in ch.pieces}
                assert thinks and thinks <= on_channel, key
                units = json.loads(s.extra["lws.json"])
                sr = tl.sample_rate
                user_units = {
                    x
                    for u in tl.utterances
                    if u.speaker == "user"
                    for w in u.words
                    for x in range(w.start_samples // sr, (w.end_samples - 1) // sr + 1)
                }
                heard = [
                    bool(u["listen_text"]) for u in units if u["unit"] in user_units and u["kind"] == "listen"
                ]
                assert any(heard), key
                listening += len(heard)
                with_text += sum(heard)
                for u in units:
                    if "<|turn_eos|>" in u["text"]:
                        assert u["spoken"] and f"{u['spoken']}<|turn_eos|><|eos|>" in u["text"], key
                frames = json.loads(s.extra["ct.json"])
                for i, f in enumerate(frames):
                    if f == "<BOS>":
                        assert frames[i - 1] == "<EOC>" and "<BOC>" not in frames[i - 2 : i - 1], key
    assert n_think >= 3
    # Offline notes are cut at the seconds the user really spoke: (almost) every such second has one
    # (the exception: a second in which no word of the turn ended yet).
    assert with_text >= 0.9 * listening > 0
    fam = summary["cognition"]["think"]
    assert fam["cognition"] == {"carried": n_think} and fam["chains"] == {"carried": n_think}
