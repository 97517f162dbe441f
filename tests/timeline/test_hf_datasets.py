"""Shards load with Hugging Face ``datasets``' webdataset builder, which infers one Arrow type per
field from the first 5 samples of the first shard and casts every later sample to it.

The shard is built to break a non-type-stable ``json`` member: its first 5 samples have no actions,
no augmentation draws, no cut and no planning (nulls and empty lists), the 6th has all of them,
with augmentation values of four JSON types and tool parameters whose ``amount`` is an int in one
action and a string in the next. Every sample must load, with its audio, and give back the records
that were written.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from duplexloom.schemas import ChunkRecord, SampleMeta, Speaker, Timeline, TokenizerInfo
from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.chunk import ActionPiece
from duplexloom.schemas.timeline import AugmentationParam
from duplexloom.schemas.utterance import TimedSpan, Utterance
from duplexloom.timeline.sample_codec import (
    chunks_from_json,
    encode_sample,
    meta_from_json,
    shard_tar_bytes,
    stable_dump,
)

datasets = pytest.importorskip("datasets", reason="the `datasets` test dependency (make test installs it)")

SR, CHUNK = 16_000, 2_560


def _meta(key: str, rich: bool) -> SampleMeta:
    n = 6 * CHUNK
    spk = {role: Speaker(id=role, role=role, display_name=role) for role in ("user", "assistant")}
    words = (TimedSpan(text="hi", start_samples=0, end_samples=CHUNK, confidence=0.9),)
    utterances: tuple[Utterance, ...] = (
        Utterance(id="u0", speaker="user", lang="en", text="hi", words=words, audio_end_samples=CHUNK),
    )
    actions: tuple[ActionObject, ...] = ()
    augmentation: tuple[AugmentationParam, ...] = ()
    provenance: dict = {}
    if rich:
        utterances += (
            Utterance(id="a0", speaker="assistant", lang="en", text="ok then", audio_start_samples=CHUNK,
                      audio_end_samples=3 * CHUNK, cut_samples=3 * CHUNK, turn_index=1),
        )  # fmt: skip
        actions = (
            ActionObject(id="x0", name="increase_car_setting", offset_samples=CHUNK, planning="warmer",
                         parameters={"item": "temperature", "amount": 2}),
            ActionObject(id="x1", name="increase_car_setting", offset_samples=2 * CHUNK,
                         parameters={"item": "volume", "amount": "a bit", "nested": {"a": [1, "b"]}}),
        )  # fmt: skip
        augmentation = (
            AugmentationParam(name="family", value="toolcall", distribution="fixed"),
            AugmentationParam(name="gap_s", value=0.31, distribution="lognormal(0.3, 0.5)", target="a0"),
            AugmentationParam(name="stop_chunks", value=2, distribution="randint(1, 3)"),
            AugmentationParam(name="barge_in", value=True, distribution="bernoulli(0.5)"),
            AugmentationParam(name="none", value=None, distribution="fixed"),
        )
        provenance = {"seed": {"tools": ["increase_car_setting"]}, "annotator": "offline"}
    timeline = Timeline(session_id=key, duration_samples=n, lang="en", utterances=utterances,
                        actions=actions, augmentation=augmentation)  # fmt: skip
    return SampleMeta(
        key=key, family="toolcall" if rich else "dialogue", lang="en", system_prompt="你好 {}",
        speakers=spk, tokenizer=TokenizerInfo(name="builtin", kind="builtin"), run_seed=1, seed_id=key,
        provenance=provenance, timeline=timeline, reply_text="written" if rich else None,
    )  # fmt: skip


def _chunks(rich: bool) -> list[ChunkRecord]:
    chunks = [ChunkRecord(chunk=i, anchor="<vad_silence>") for i in range(6)]
    if rich:
        piece = ActionPiece(action_id="x0", text="warmer", tokens=1, closes=False)
        chunks[1] = ChunkRecord(chunk=1, user_words=("hi",), anchor="ok", action_text="warmer",
                                action_tokens=1, pieces=(piece,))  # fmt: skip
    return chunks


def _sample(i: int) -> tuple[str, dict[str, bytes], SampleMeta, list[ChunkRecord], np.ndarray]:
    key = f"s{i:03d}"
    rich = i == 5
    meta, chunks = _meta(key, rich), _chunks(rich)
    rng = np.random.default_rng(i)
    user = (0.1 * rng.standard_normal(6 * CHUNK)).astype(np.float32)
    members = encode_sample(meta, user, user * 0.5, chunks, trace="t\n")
    return key, members, meta, chunks, user


def test_stable_dump_gives_one_json_type_per_field() -> None:
    plain, rich = stable_dump(_meta("a", False)), stable_dump(_meta("b", True))

    def types(obj: object, path: str = "") -> dict[str, str]:
        if isinstance(obj, dict):
            return {k: v for key, val in obj.items() for k, v in types(val, f"{path}.{key}").items()}
        return {path: type(obj).__name__}

    assert types(plain) == types(rich)  # same fields, same JSON types, whatever the values
    assert isinstance(rich["timeline"]["augmentation"], str)
    assert rich["timeline"]["session_id"] == "b" and rich["timeline"]["duration_samples"] == 6 * CHUNK


def test_datasets_loads_every_sample_with_audio(tmp_path) -> None:
    samples = [_sample(i) for i in range(7)]
    shard = tmp_path / "000000.tar"
    shard.write_bytes(shard_tar_bytes([(key, members) for key, members, *_ in samples]))
    datasets.disable_progress_bars()
    ds = datasets.load_dataset(
        "webdataset", data_files=[str(shard)], split="train", cache_dir=str(tmp_path / "hf")
    )
    assert len(ds) == 7
    assert isinstance(ds.features["user.flac"], datasets.Audio)
    raw = ds.cast_column("user.flac", datasets.Audio(decode=False))
    for row, (key, _members, meta, chunks, user) in zip(raw, samples, strict=True):
        assert row["__key__"] == key
        assert meta_from_json(row["json"]) == meta  # the same records back, Any values included
        assert chunks_from_json(row["chunks.json"]) == chunks
        audio, sr = sf.read(io.BytesIO(row["user.flac"]["bytes"]), dtype="float32")
        assert sr == SR
        np.testing.assert_allclose(audio, user, atol=1e-4)
    rich = meta_from_json(raw[5]["json"])
    assert [a.value for a in rich.timeline.augmentation] == ["toolcall", 0.31, 2, True, None]
    assert isinstance(rich.timeline.augmentation[2].value, int)
    assert [a.parameters["amount"] for a in rich.timeline.actions] == [2, "a bit"]
    # datasets' own audio decoding (torchcodec), where it is installed
    pytest.importorskip("torchcodec.decoders", reason="datasets decodes audio with torchcodec")
    decoded = ds[5]["user.flac"]
    samples_ = decoded.get_all_samples() if hasattr(decoded, "get_all_samples") else None
    array = samples_.data.numpy()[0] if samples_ is not None else np.asarray(decoded["array"])
    np.testing.assert_allclose(array, samples[5][4], atol=1e-4)


def test_shards_of_a_real_run_load_with_their_audio(tmp_path) -> None:
    """The job's own shards (bundled seeds of several kinds, offline annotator, espeak-ng) load."""
    import json

    from duplexloom.pipelines.config import load_config
    from duplexloom.pipelines.run import DEFAULT_SEEDS, run

    # bundled demo seeds whose drawn families differ (asr_assistant, dialogue, pause, toolcall, interpret, think)
    pick = {"zh-qa-07", "en-dlg-02", "en-tool-12", "zh-tool-13", "zh-tool-12", "en-qa-98", "zh-qa-49"}
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "".join(line for line in open(DEFAULT_SEEDS, encoding="utf-8") if json.loads(line)["id"] in pick),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    cfg = load_config(None, [f"output.dir={out}", f"input.seeds=['{seeds}']", "shards.num_shards=1",
                             "progress=false"])  # fmt: skip
    summary, _ = run(cfg, [])
    assert summary["accounting"]["samples_out"] == len(pick)
    datasets.disable_progress_bars()
    ds = datasets.load_dataset(
        "webdataset",
        data_files=[str(out / "shards" / "000000.tar")],
        split="train",
        cache_dir=str(tmp_path / "hf"),
    ).cast_column("assistant.flac", datasets.Audio(decode=False))
    assert len(ds) == len(pick)
    families = set()
    for row in ds:
        meta = meta_from_json(row["json"])
        families.add(meta.family)
        audio, sr = sf.read(io.BytesIO(row["assistant.flac"]["bytes"]), dtype="float32")
        assert (
            sr == meta.timeline.sample_rate
            and len(audio) == len(chunks_from_json(row["chunks.json"])) * CHUNK
        )
    assert len(families) >= 3
