"""The trainer on small real shards (see conftest): loss falls, resume is exact, eval logic, layout."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from duplexloom.cli import main as duplexloom_main
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.tokens import ACTION_END, LABEL_RESPONSE, USER_AUDIO_BEGIN
from duplexloom.shardio import expand_shards
from duplexloom.timeline.sample_codec import decode_sample, encode_sample, iter_shard, shard_tar_bytes
from duplexloom.trainer.codec import ExternalCodec, encode_codes_member
from duplexloom.trainer.config import load_config
from duplexloom.trainer.data import ShardStream, collate, make_loader, prepare
from duplexloom.trainer.evaluate import evaluate
from duplexloom.trainer.sequence import Cat, build_example
from duplexloom.trainer.train import fit_bundle, load_bundle, train
from duplexloom.trainer.vocab import USER

TINY = Path(__file__).resolve().parents[2] / "trainer" / "configs" / "tiny.yaml"


def _cfg(shard_dir: Path, *extra: str):
    return load_config(TINY, [f"data.shards={shard_dir / 'train' / '*.tar'}", *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _strip_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("tok_per_s", "elapsed_s")} for r in rows]


def test_cli_trains_loss_falls_and_evaluates(shard_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = duplexloom_main(
        ["train", "--config", str(TINY), "--shards", str(shard_dir / "train" / "*.tar"),
         "--eval-shards", str(shard_dir / "heldout" / "*.tar"), "--out", str(out), "--set", "optim.max_steps=30"]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 30
    rows = _rows(out / "train_log.csv")
    first, last = rows[0], rows[-1]
    assert float(last["loss"]) < 0.75 * float(first["loss"])
    for ch in ("T", "A", "action"):  # every channel learns, not only the easy one
        assert float(last[f"loss_{ch}"]) < float(first[f"loss_{ch}"])
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert (out / "ckpt" / "last.pt").exists()
    ev = _rows(out / "eval_log.csv")[-1]
    assert int(ev["samples"]) == 6 and int(ev["response_true"]) == 6 and int(ev["backchannel_true"]) == 3
    assert float(ev["loss_all"]) < float(first["loss_all"])  # held-out loss below the untrained loss

    rc = duplexloom_main(
        ["train", "--eval", "--checkpoint", str(out / "ckpt" / "last.pt"),
         "--shards", str(shard_dir / "heldout" / "*.tar")]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["loss"]["all"] == pytest.approx(float(ev["loss_all"]), abs=1e-5)
    assert 0.0 <= result["label_timing"]["response"]["share"] <= 1.0


def test_resume_continues_identically(shard_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(shard_dir, "optim.max_steps=16", "run.ckpt_every=8", "run.log_every=4")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(cfg, straight)
    # Simulate a crash after step 8: the step-8 checkpoint plus a log that already holds later rows.
    (resumed / "ckpt").mkdir(parents=True)
    shutil.copy(straight / "ckpt" / "step_0000008.pt", resumed / "ckpt" / "last.pt")
    shutil.copy(straight / "train_log.csv", resumed / "train_log.csv")
    train(cfg, resumed, resume=True)
    a, _ = load_bundle(straight / "ckpt" / "last.pt")
    b, ck = load_bundle(resumed / "ckpt" / "last.pt")
    assert ck["state"]["step"] == 16
    for (name, pa), (_, pb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert _strip_timing(_rows(resumed / "train_log.csv")) == _strip_timing(_rows(straight / "train_log.csv"))
    np.testing.assert_array_equal(a.codec.centers, b.codec.centers)


def test_layout_matches_spec(shard_dir: Path) -> None:
    cfg = _cfg(shard_dir)
    bundle = fit_bundle(cfg)
    key, members = next(iter_shard(io.BytesIO((shard_dir / "heldout" / "000000.tar").read_bytes())))
    sample = decode_sample(key, members)
    codes, feats = prepare(sample, bundle.codec, cfg)
    n = len(sample.chunks)
    ex = build_example(sample, codes, feats, bundle.vocab, 0, n, 4096)
    assert (ex.input_ids == USER).sum() == 2 * n == len(ex.user_feats)
    pieces = [bundle.vocab.describe(int(i)) for i in ex.input_ids]
    assert pieces.count(USER_AUDIO_BEGIN) == n and pieces.count(ACTION_END) == n
    assert pieces.count(LABEL_RESPONSE) == 1
    # Chunk 0 has no action text: the 11-token skeleton of SPEC section 15.
    assert pieces[:11] == [USER_AUDIO_BEGIN, "U", "U", "<|user_audio_end|>", "<|assistant_audio_begin|>",
                           sample.chunks[0].anchor, *pieces[6:10], "<|assistant_audio_end|>"]  # fmt: skip
    assert all(p.startswith("A") for p in pieces[6:10])
    # User positions are never predicted; the label token is its own category.
    assert not ((ex.target_cat != Cat.IGNORE) & (np.roll(ex.input_ids, -1) == USER)).any()
    label_pos = np.flatnonzero(np.roll(ex.input_ids, -1) == bundle.vocab.special_ids[LABEL_RESPONSE])
    assert ex.target_cat[label_pos[0]] == Cat.LABEL


def test_model_is_causal_in_user_audio(shard_dir: Path) -> None:
    cfg = _cfg(shard_dir)
    bundle = fit_bundle(cfg)
    stream = ShardStream(expand_shards(str(shard_dir / "heldout" / "*.tar")), cfg, bundle.codec, bundle.vocab,
                         train=False)  # fmt: skip
    batch = collate([next(iter(stream))])
    model = bundle.model.eval()
    with torch.no_grad():
        ref = model(batch["input_ids"], batch["user_slot"], batch["user_feats"])
        feats = batch["user_feats"].clone()
        feats[0, 10:] += 5.0  # change the user audio from feature 10 (chunk 5) on
        alt = model(batch["input_ids"], batch["user_slot"], feats)
    first_changed = int((batch["user_slot"][0] == 10).nonzero()[0])
    assert torch.allclose(ref[0, :first_changed], alt[0, :first_changed])
    assert not torch.allclose(ref[0, first_changed:], alt[0, first_changed:])


class _Oracle(torch.nn.Module):
    """Predicts the true next token (it reads the teacher-forced input): a perfect model."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, input_ids, user_slot, user_feats):
        nxt = torch.roll(input_ids, -1, dims=1)
        return torch.nn.functional.one_hot(nxt, self.vocab_size).float() * 20.0


def test_label_timing_of_a_perfect_model_is_one(shard_dir: Path) -> None:
    cfg = _cfg(shard_dir)
    bundle = fit_bundle(cfg)
    bundle.model = _Oracle(bundle.vocab.size)
    result = evaluate(bundle, expand_shards(str(shard_dir / "heldout" / "*.tar")))
    timing = result["label_timing"]
    assert timing["response"]["true"] == 6 and timing["response"]["share"] == 1.0
    assert timing["backchannel"]["true"] == 3 and timing["backchannel"]["share"] == 1.0
    assert timing["response"]["false_alarms"] == 0 and timing["backchannel"]["false_alarms"] == 0
    # The untrained model is not a perfect one.
    assert evaluate(fit_bundle(cfg), expand_shards(str(shard_dir / "heldout" / "*.tar")))["loss"]["all"] > 1.0


def test_external_codec_reads_codes_member(shard_dir: Path, tmp_path: Path) -> None:
    key, members = next(iter_shard(io.BytesIO((shard_dir / "heldout" / "000000.tar").read_bytes())))
    sample = decode_sample(key, members)
    n = len(sample.chunks)
    codes = (np.arange(n * 4) % 7).reshape(n, 4)
    with_codes = encode_sample(sample.meta, sample.user_audio, sample.assistant_audio, sample.chunks,
                               sample.trace, extra={"assistant.codes.npy": encode_codes_member(codes)})  # fmt: skip
    codec = ExternalCodec(codebook_size=8, member="assistant.codes.npy")
    np.testing.assert_array_equal(codec.encode(decode_sample(key, with_codes)), codes)
    with pytest.raises(RejectError) as err:
        codec.encode(sample)
    assert err.value.code == "missing_codes"
    # A shard mixing both: the sample without codes is skipped and counted, the other trains.
    shard = tmp_path / "ext" / "000000.tar"
    shard.parent.mkdir()
    shard.write_bytes(shard_tar_bytes([(key, with_codes), ("zz" + key, members)]))
    cfg = load_config(TINY, [f"data.shards={shard}", "codec.kind=external", "codec.codebook_size=8"])
    bundle = fit_bundle(cfg)
    stream = ShardStream([str(shard)], cfg, bundle.codec, bundle.vocab, train=False)
    examples = list(stream)
    assert {e.key for e in examples} == {key} and stream.rejects == {"missing_codes": 1}


def test_bf16_autocast_path_runs_on_cpu(shard_dir: Path, tmp_path: Path) -> None:
    # The CUDA path is the same code with run.autocast resolved to bf16; force it here on CPU.
    cfg = _cfg(shard_dir, "optim.max_steps=2", "run.autocast=bf16")
    summary = train(cfg, tmp_path / "bf16")
    assert summary["step"] == 2 and np.isfinite(float(summary["final"]["loss"]))


def test_loader_workers_are_deterministic_per_epoch(shard_dir: Path) -> None:
    cfg = _cfg(shard_dir, "data.num_workers=2")
    bundle = fit_bundle(cfg)
    stream = ShardStream(expand_shards(cfg.data.shards), cfg, bundle.codec, bundle.vocab)

    def epoch(e: int) -> list[tuple]:
        stream.set_epoch(e)
        loader = make_loader(stream, cfg.data.batch_size, cfg.data.num_workers)
        return [(*b["keys"], int(b["input_ids"].sum())) for b in loader]

    first, again, other = epoch(0), epoch(0), epoch(1)
    assert first == again  # same (seed, epoch): same batches, whatever the worker scheduling
    assert first != other  # a new epoch reshuffles shards, samples and crops
    keys = sorted(k for b in first for k in b[:-1])
    assert keys == sorted(k for b in other for k in b[:-1]) and len(keys) == 24 == len(set(keys))


def test_missing_eval_shards_fail_up_front(shard_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = duplexloom_main(
        ["train", "--config", str(TINY), "--shards", str(shard_dir / "train" / "*.tar"),
         "--eval-shards", str(tmp_path / "heldout" / "*.tar"), "--out", str(out)]
    )  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"duplexloom train: --eval-shards '{tmp_path / 'heldout' / '*.tar'}' matches no shard"]
    assert not (out / "ckpt").exists()  # nothing was trained
    rc = duplexloom_main(["train", "--eval", "--checkpoint", "x.pt", "--shards", str(tmp_path / "no.tar")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_webdataset_decoders_need_no_torchcodec(shard_dir: Path) -> None:
    import webdataset as wds

    from duplexloom.schemas.sample import SampleMeta
    from duplexloom.trainer.data import wds_audio, wds_records

    url = str(sorted((shard_dir / "heldout").glob("*.tar"))[0])
    with open(url, "rb") as f:
        raw = dict(iter_shard(f))
    seen = 0
    for s in wds.WebDataset(url, shardshuffle=False).decode(wds_audio, wds_records):
        want = decode_sample(s["__key__"], raw[s["__key__"]])
        user, sr = s["user.flac"]
        assert sr == 16_000 and user.dtype == torch.float32 and user.shape == (1, len(want.user_audio))
        np.testing.assert_array_equal(user[0].numpy(), want.user_audio)
        assert isinstance(s["json"], SampleMeta) and s["json"] == want.meta
        assert s["chunks.json"] == want.chunks
        seen += 1
    assert seen == 6
