"""Exports for moshi-finetune and NeMo duplex load back: through our moshi reader (written to the
documented format) and through lhotse itself. Shards are real tars with real (tone) audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from duplexloom.cli import main as duplexloom_main
from duplexloom.pipelines.export import run_export
from duplexloom.pipelines.export_moshi import (
    SPEAKER_MAIN,
    SPEAKER_OTHER,
    read_moshi_manifest,
)
from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.sample import SampleMeta, TokenizerInfo
from duplexloom.schemas.speaker import Speaker
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.units import chunk_samples
from duplexloom.schemas.utterance import TimedSpan, Utterance
from duplexloom.timeline.sample_codec import encode_sample, shard_tar_bytes

SR = 16_000
USER_HZ, ASSISTANT_HZ = 220.0, 440.0


def _s(seconds: float) -> int:
    return int(round(seconds * SR))


def _words(texts: list[str], start_s: float, step_s: float) -> tuple[TimedSpan, ...]:
    return tuple(
        TimedSpan(text=t, start_samples=_s(start_s + i * step_s), end_samples=_s(start_s + (i + 1) * step_s))
        for i, t in enumerate(texts)
    )


def _tone(track: np.ndarray, hz: float, start: int, end: int) -> None:
    t = np.arange(end - start) / SR
    track[start:end] += 0.3 * np.sin(2 * np.pi * hz * t).astype(np.float32)


def _sample(
    key: str,
    lang: str,
    *,
    cut_s: float | None,
    overrun: bool = False,
    punct: bool = False,
    silent: bool = False,
) -> tuple[str, dict, dict]:
    """One session: a user request, an (optionally interrupted) assistant reply, a user backchannel.
    ``punct``: the texts carry punctuation the aligner's words do not; ``silent``: no assistant reply."""
    duration = 20 * chunk_samples(SR)  # 3.2 s
    u0 = _words(["turn", "on", "the", "lights"] if lang == "en" else ["打开", "车灯"], 0.2, 0.25)
    a0 = _words(["okay", "turning", "them", "on"] if lang == "en" else ["好的", "正在", "打开"], 1.5, 0.3)
    u1 = _words(["wait"], 2.2, 0.3 if not overrun else 1.5)  # overrun: ends at 3.7 s > 3.2 s
    sep = " " if lang == "en" else ""
    u0_text, a0_text = sep.join(w.text for w in u0), sep.join(w.text for w in a0)
    if punct:
        u0_text, a0_text = (
            ("Turn on the lights!", "Okay, turning “them” on.")
            if lang == "en"
            else ("打开车灯。", "好的，正在打开。")
        )
    cut = _s(cut_s) if cut_s is not None else None
    a0_end = cut if cut is not None else a0[-1].end_samples
    utterances = (
        Utterance(id="u0", speaker="user", lang=lang, text=u0_text, words=u0,
                  audio_start_samples=u0[0].start_samples, audio_end_samples=u0[-1].end_samples),
        Utterance(id="a0", speaker="assistant", lang=lang, text=a0_text, words=a0,
                  audio_start_samples=a0[0].start_samples, audio_end_samples=a0_end, cut_samples=cut),
        Utterance(id="u1", speaker="user", lang=lang, text="wait", kind="interrupt" if cut else "backchannel",
                  words=u1, audio_start_samples=u1[0].start_samples, audio_end_samples=u1[-1].end_samples),
    )  # fmt: skip
    if silent:
        utterances = tuple(u for u in utterances if u.speaker == "user")
    actions = (
        ActionObject(id="act0", name="set_lights", offset_samples=_s(1.0), parameters={"on": True}),
        ActionObject(id="act1", name="response", offset_samples=_s(1.2)),
    )
    timeline = Timeline(session_id=key, sample_rate=SR, duration_samples=duration, lang=lang,
                        utterances=utterances, actions=actions)  # fmt: skip
    meta = SampleMeta(
        key=key, family="dialogue", lang=lang, system_prompt="You are a car assistant.",
        speakers={"user": Speaker(id="spk_u", role="user", display_name="U"),
                  "assistant": Speaker(id="spk_a", role="assistant", display_name="A")},
        tokenizer=TokenizerInfo(name="builtin", kind="builtin"), run_seed=7, seed_id=f"seed-{key}",
        timeline=timeline,
    )  # fmt: skip
    user = np.zeros(duration, dtype=np.float32)
    assistant = np.zeros(duration, dtype=np.float32)
    for utt in utterances:
        if utt.speaker == "user":
            _tone(user, USER_HZ, utt.audio_start_samples, min(utt.audio_end_samples, duration))
        else:
            _tone(assistant, ASSISTANT_HZ, utt.audio_start_samples, utt.audio_end_samples)
    chunks = [ChunkRecord(chunk=i, anchor="") for i in range(20)]
    members = encode_sample(meta, user, assistant, chunks, trace="trace\n")
    return key, members, {"meta": meta, "user": user, "assistant": assistant}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("shards")
    en = _sample("sessen", "en", cut_s=2.2)
    zh = _sample("sesszh", "zh", cut_s=None)
    bad = _sample("sessbad", "en", cut_s=None, overrun=True)
    (root / "000000.tar").write_bytes(shard_tar_bytes([en[:2], zh[:2]]))
    missing = _sample("sessmissing", "en", cut_s=None)[1]
    missing = {k: v for k, v in missing.items() if k != "trace.txt"}
    (root / "000001.tar").write_bytes(shard_tar_bytes([bad[:2], ("sessmissing", missing)]))
    return {"root": root, "good": str(root / "000000.tar"), "all": str(root / "*.tar"),
            "src": {en[0]: en[2], zh[0]: zh[2]}}  # fmt: skip


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spectrum))])


def test_moshi_export_reads_back(shards: dict, tmp_path: Path) -> None:
    summary = run_export("moshi", [shards["all"]], tmp_path)
    assert (summary.samples, summary.rejects) == (2, 2)  # every sample exported or rejected
    rejects = [json.loads(x) for x in (tmp_path / "rejects.ndjson").read_text().splitlines()]
    # the folder works as moshi-finetune's train_data: every *jsonl under it is a manifest
    assert [p.name for p in tmp_path.rglob("*jsonl")] == ["manifest.jsonl"]
    assert [(r["record_id"], r["code"], r["stage"]) for r in rejects] == [
        ("sessbad", "word_outside_audio", "export"),
        ("sessmissing", "bad_sample", "export"),
    ]

    items = {p.path.stem: p for p in read_moshi_manifest(tmp_path / "manifest.jsonl")}
    assert sorted(items) == ["sessen", "sesszh"]
    for key, item in items.items():
        src = shards["src"][key]
        assert item.sample_rate == 24_000 and item.path.is_absolute()
        assert len(item.audio) == len(src["user"]) * 3 // 2
        assert item.duration_s == pytest.approx(len(src["user"]) / SR)
        # channel 0 is the assistant: the assistant's tone, silent where only the user speaks
        a0 = next(u for u in src["meta"].timeline.utterances if u.id == "a0")
        lo, hi = a0.audio_start_samples * 3 // 2, a0.audio_end_samples * 3 // 2
        assert _dominant_hz(item.audio[lo:hi, 0], 24_000) == pytest.approx(ASSISTANT_HZ, abs=5)
        assert _dominant_hz(item.audio[: int(1.2 * 24_000), 1], 24_000) == pytest.approx(USER_HZ, abs=5)
        assert np.abs(item.audio[: int(1.2 * 24_000), 0]).max() < 1e-3
        # word times are the timeline's, in seconds from the start of the file
        main = item.main_words
        other = [a for a in item.alignments if a[2] == SPEAKER_OTHER]
        assert {a[2] for a in item.alignments} == {SPEAKER_MAIN, SPEAKER_OTHER}
        user_words = [w for u in src["meta"].timeline.utterances if u.speaker == "user" for w in u.words]
        assert [a[0] for a in other] == [w.text for w in user_words]
        assert [a[1][0] for a in other] == pytest.approx([w.start_samples / SR for w in user_words])
        if key == "sessen":  # interrupted at 2.2 s: only the words started before the cut, clipped
            assert [a[0] for a in main] == ["okay", "turning", "them"]
            assert main[-1][1] == (pytest.approx(2.1), pytest.approx(2.2))
        else:
            assert [a[0] for a in main] == [w.text for w in a0.words]
            assert main[-1][1][1] == pytest.approx(a0.words[-1].end_samples / SR)


def test_nemo_export_loads_through_lhotse(shards: dict, tmp_path: Path) -> None:
    from lhotse import CutSet, Recording
    from lhotse.qa import validate

    summary = run_export("nemo", [shards["good"]], tmp_path)  # defaults: 22050 Hz target, user/agent
    assert (summary.samples, summary.rejects) == (2, 0)
    cuts = CutSet.from_file(tmp_path / "cuts.jsonl.gz")
    validate(cuts, read_data=True)
    assert sorted(c.id for c in cuts) == ["sessen", "sesszh"]
    for cut in cuts:
        src = shards["src"][cut.id]
        user = cut.load_audio()
        assert user.shape == (1, len(src["user"])) and cut.sampling_rate == SR
        np.testing.assert_allclose(user[0], src["user"], atol=1e-4)  # 16-bit FLAC quantization
        target = cut.custom["target_audio"]
        assert isinstance(target, Recording) and target.sampling_rate == 22_050
        assistant = cut.load_target_audio()
        assert assistant.shape[1] == target.num_samples
        assert target.duration == pytest.approx(cut.duration, abs=1e-3)
        assert _dominant_hz(assistant[0], 22_050) == pytest.approx(ASSISTANT_HZ, abs=5)

        sups = cut.supervisions
        assert [s.speaker for s in sups] == ["user", "agent", "user"]
        assert all(0 <= s.start and s.end <= cut.duration + 1e-9 for s in sups)
        assert [s.start for s in sups] == sorted(s.start for s in sups)
        meta = src["meta"]
        assert [s.custom["utterance_id"] for s in sups] == [u.id for u in meta.timeline.utterances]
        assistant_sup = sups[1]
        if cut.id == "sessen":
            assert assistant_sup.text == "okay turning them"
            assert assistant_sup.custom["interrupted"] and assistant_sup.custom["full_text"].endswith("on")
            assert assistant_sup.end == pytest.approx(2.2)
        else:
            assert assistant_sup.text == "好的正在打开" and not assistant_sup.custom["interrupted"]
        assert [a.symbol for a in sups[0].alignment["word"]] == [
            w.text for w in meta.timeline.utterances[0].words
        ]
        actions = cut.custom["actions"]
        assert [(a["name"], a["offset_s"]) for a in actions] == [("set_lights", 1.0), ("response", 1.2)]
        assert actions[0]["parameters"] == {"on": True}
        assert cut.custom["system_prompt"] == meta.system_prompt


def test_nemo_shar_and_cli(shards: dict, tmp_path: Path) -> None:
    from lhotse import CutSet

    rc = duplexloom_main(["export", "nemo", "--target-sample-rate", "0", shards["good"], str(tmp_path)])
    assert rc == 0  # Shar is written by default; rate 0 keeps the session rate
    cuts = CutSet.from_shar(in_dir=tmp_path / "shar")
    seen = 0
    for cut in cuts:
        seen += 1
        src = shards["src"][cut.id]
        np.testing.assert_allclose(cut.load_target_audio()[0], src["assistant"], atol=1e-4)
        assert {s.speaker for s in cut.supervisions} == {"user", "agent"}
    assert seen == 2
    assert sorted(p.name for p in (tmp_path / "shar").glob("*.tar")) == [
        "recording.000000.tar",
        "target_audio.000000.tar",
    ]
    # the CLI reports rejects through its exit code and rejects.jsonl
    rc = duplexloom_main(["export", "moshi", "--relative-paths", shards["all"], str(tmp_path / "m")])
    assert rc == 1
    lines = (tmp_path / "m" / "manifest.jsonl").read_text().splitlines()
    assert all(not Path(json.loads(x)["path"]).is_absolute() for x in lines)
    assert len(list(read_moshi_manifest(tmp_path / "m" / "manifest.jsonl"))) == 2


def test_nemo_defaults_read_as_nemos_duplex_dataset_reads_them(shards: dict, tmp_path: Path) -> None:
    """``DuplexS2SDataset.__getitem__`` with the s2s_duplex recipe's settings, on the Shar the export
    writes by default: the recording is resampled to the source rate, ``target_audio`` is read as
    stored and taken to be at the target rate (lhotse's ``collate_audio``, as NeMo calls it), and
    the token channels keep the supervisions whose speaker is in the default roles."""
    from lhotse import CutSet
    from lhotse.dataset.collation import collate_audio

    source_sr, target_sr = 16_000, 22_050  # recipe: source_sample_rate, target_sample_rate
    input_roles, output_roles = {"user"}, {"agent"}  # the dataset's defaults
    assert duplexloom_main(["export", "nemo", shards["good"], str(tmp_path)]) == 0
    cuts = CutSet.from_shar(in_dir=tmp_path / "shar").to_eager()
    source, source_lens = collate_audio(cuts.resample(source_sr))
    target, target_lens = collate_audio(cuts.resample(target_sr), recording_field="target_audio")
    for cut, n_src, n_tgt in zip(cuts, source_lens.tolist(), target_lens.tolist(), strict=True):
        # both channels last as long as the session (a 16 kHz target would read 0.726x as long)
        assert n_src / source_sr == pytest.approx(cut.duration, abs=1e-3)
        assert n_tgt / target_sr == pytest.approx(cut.duration, abs=1e-3)
        inputs = [s for s in cut.supervisions if s.speaker in input_roles]
        outputs = [s for s in cut.supervisions if s.speaker in output_roles]
        assert len(inputs) == 2 and len(outputs) == 1 and outputs[0].text
    hz = _dominant_hz(target[0, : target_lens[0]].numpy(), target_sr)
    assert hz == pytest.approx(ASSISTANT_HZ, abs=5)  # the target's pitch is right at the target rate


def test_moshi_skips_silent_assistant_packs_and_keeps_punctuation(tmp_path: Path) -> None:
    samples = [
        _sample("p0en", "en", cut_s=None, punct=True),
        _sample("p1silent", "en", cut_s=None, silent=True),
        _sample("p2zh", "zh", cut_s=None, punct=True),
        _sample("p3en", "en", cut_s=2.2, punct=True),
    ]
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "000000.tar").write_bytes(shard_tar_bytes([s[:2] for s in samples]))
    out = tmp_path / "moshi"
    rc = duplexloom_main(
        ["export", "moshi", "--min-duration", "5", "--gap", "1", str(tmp_path / "shards" / "*.tar"), str(out)]
    )
    assert rc == 0  # a skipped session is not a reject
    summary = json.loads((out / "export_summary.json").read_text())
    assert (summary["samples"], summary["rejects"]) == (3, 0)
    assert summary["skipped"] == {"assistant_silent": 1} and summary["skipped_keys"] == ["p1silent"]

    items = list(read_moshi_manifest(out / "manifest.jsonl"))
    # 3.2 s + 1 s gap + 3.2 s >= 5 s closes the first file; the last one holds what is left
    assert [i.path.name for i in items] == ["pack_000000.wav", "pack_000001.wav"]
    assert [i.duration_s for i in items] == pytest.approx([7.4, 3.2])
    first = items[0]
    doc = json.loads(first.path.with_suffix(".json").read_text())
    assert [(x["key"], x["start_s"]) for x in doc["sessions"]] == [("p0en", 0.0), ("p2zh", 4.2)]
    assert [a[0] for a in first.main_words] == [
        "Okay,",
        "turning",
        "“them”",
        "on.",
        "好的，",
        "正在",
        "打开。",
    ]
    assert [a[0] for a in first.alignments if a[2] == SPEAKER_OTHER][:4] == ["Turn", "on", "the", "lights!"]
    # the second session's words and audio sit 4.2 s into the file: silence in the gap
    zh_first = next(a for a in first.main_words if a[0] == "好的，")
    assert zh_first[1][0] == pytest.approx(4.2 + 1.5)
    gap = first.audio[int(3.2 * 24_000) + 10 : int(4.2 * 24_000) - 10]
    assert np.abs(gap).max() < 1e-3
    lo = int((4.2 + 1.6) * 24_000)
    assert _dominant_hz(first.audio[lo : lo + 12_000, 0], 24_000) == pytest.approx(ASSISTANT_HZ, abs=5)
    # interrupted at 2.2 s: the heard words, the last one with the punctuation after it in the text
    assert [a[0] for a in items[1].main_words] == ["Okay,", "turning", "“them”"]
