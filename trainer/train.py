"""The training loop: setup (codec + vocabulary fitted on the shards), steps, logs, checkpoints, resume.

Input: a :class:`TrainConfig` and an output directory. Output, under ``out/``: ``config.yaml`` (the
resolved config), ``train_log.csv`` (one row per ``log_every`` steps: objective, per-channel and
per-label losses, learning rate, tokens/s), ``eval_log.csv`` and ``eval.json`` (when
``data.eval_shards`` is set), ``loss_curve.png``, and ``ckpt/last.pt`` + ``ckpt/step_XXXXXXX.pt``.

A checkpoint holds the model, optimizer, scheduler, step, (epoch, batches done in that epoch), the
torch RNG states, the codec (k-means codebook) and the model vocabulary, and the config. Resuming
replays the current epoch's deterministic stream and skips the batches already trained on, so a
resumed run produces the same parameters and log rows as an uninterrupted one. On CUDA the forward
pass runs under bf16 autocast (``run.autocast``); the same code runs on CPU in fp32 (or bf16 when
``run.autocast=bf16``, which the CPU tests use to exercise the autocast path).
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from duplexloom.localfs import write_atomic
from duplexloom.shardio import expand_shards
from duplexloom.timeline.tokenizer import load_tokenizer

from .codec import AudioCodec, ExternalCodec, codec_from_state, seed_for
from .config import TrainConfig, dump_config
from .data import ShardStream, fit_codec, fit_texts, make_loader, to_device_batch
from .evaluate import evaluate, flat_row
from .features import FRAMES_PER_USER_FEATURE
from .loss import REPORTED, LossStats, channel_loss, weight_table
from .model import DuplexLM
from .vocab import PAD, ModelVocab

LOG_FIELDS = [
    "step",
    "epoch",
    "lr",
    "loss",
    *(f"loss_{k}" for k in REPORTED),
    "tokens",
    "tok_per_s",
    "elapsed_s",
]


@dataclass
class Bundle:
    """Everything a checkpoint restores besides optimizer state."""

    cfg: TrainConfig
    codec: AudioCodec
    vocab: ModelVocab
    model: DuplexLM


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def autocast_ctx(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    mode = cfg.run.autocast
    enabled = mode == "bf16" or (mode == "auto" and device.type == "cuda")
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def build_model(cfg: TrainConfig, vocab: ModelVocab) -> DuplexLM:
    torch.manual_seed(seed_for(cfg.seed, "model-init") % 2**63)
    return DuplexLM(cfg.model, vocab.size, FRAMES_PER_USER_FEATURE * cfg.frontend.n_mels)


def fit_bundle(cfg: TrainConfig) -> Bundle:
    """Fit the codec and vocabulary on the training shards, then build a freshly initialized model."""
    tokenizer = load_tokenizer(cfg.data.tokenizer)
    urls = expand_shards(cfg.data.shards)
    codec: AudioCodec
    if cfg.codec.kind == "kmeans":
        codec = fit_codec(urls, cfg, tokenizer)
    else:
        codec = ExternalCodec(cfg.codec.codebook_size, cfg.codec.member)
    vocab = ModelVocab.fit(
        tokenizer, codec.codebook_size, fit_texts(urls), cfg.vocab.mode, cfg.vocab.min_count
    )
    return Bundle(cfg, codec, vocab, build_model(cfg, vocab))


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Bundle, dict[str, Any]]:
    """The bundle of a checkpoint, and the raw checkpoint dict (optimizer state etc.)."""
    ck = torch.load(path, map_location=map_location, weights_only=False)
    cfg = TrainConfig.model_validate(ck["config"])
    codec = codec_from_state(ck["codec"])
    vocab = ModelVocab.from_state(ck["vocab"], load_tokenizer(cfg.data.tokenizer))
    model = DuplexLM(cfg.model, vocab.size, FRAMES_PER_USER_FEATURE * cfg.frontend.n_mels)
    model.load_state_dict(ck["model"])
    return Bundle(cfg, codec, vocab, model), ck


def lr_lambda(cfg: TrainConfig):
    o = cfg.optim

    def f(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        frac = min(1.0, (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    return f


def _read_log(path: Path, max_step: int) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= max_step]


def _write_log(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def plot_curves(out: Path) -> Path:
    """``loss_curve.png`` from ``train_log.csv`` (and ``eval_log.csv`` when present)."""
    # lazy: matplotlib (~0.4 s) only for the plot; `train --eval` imports this module, never plots
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib, after the Agg backend is chosen

    rows = _read_log(out / "train_log.csv", 1 << 62)
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [int(r["step"]) for r in rows]
    curves = (("loss", "-", "objective (weighted)"), ("loss_all", "-", "all (unweighted)"))
    curves += tuple((f"loss_{c}", "--", c) for c in ("T", "A", "action"))
    for name, style, label in curves:
        ax.plot(steps, [float(r[name]) for r in rows], style, label=f"train {label}")
    evals = _read_log(out / "eval_log.csv", 1 << 62)
    if evals:
        ax.plot(
            [int(r["step"]) for r in evals],
            [float(r["loss_all"]) for r in evals],
            "o-",
            label="eval loss_all",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "loss_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_checkpoint(path: Path, bundle: Bundle, optim, sched, state: dict[str, int]) -> None:
    ck = {
        "model": bundle.model.state_dict(),
        "optim": optim.state_dict(),
        "sched": sched.state_dict(),
        "state": dict(state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "codec": bundle.codec.state_dict(),
        "vocab": bundle.vocab.state_dict(),
        "config": bundle.cfg.model_dump(mode="json"),
    }
    write_atomic(path, lambda f: torch.save(ck, f))  # a crash mid-save never leaves a truncated last.pt


def train(cfg: TrainConfig, out: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train until ``optim.max_steps``; returns a summary (final losses, tokens/s, paths)."""
    out = Path(out)
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)
    device = resolve_device(cfg.run.device)
    last = out / "ckpt" / "last.pt"
    if resume and last.exists():
        bundle, ck = load_bundle(last)
        # The run's own config wins over the checkpoint's except for the step budget and logging.
        bundle = Bundle(cfg, bundle.codec, bundle.vocab, bundle.model)
        state = dict(ck["state"])
    else:
        bundle, ck, state = fit_bundle(cfg), None, {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    (out / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    model = bundle.model.to(device)
    optim = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda(cfg))
    if ck is not None:
        optim.load_state_dict(ck["optim"])
        sched.load_state_dict(ck["sched"])
        torch.set_rng_state(ck["torch_rng"])
        if ck["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
    table = weight_table(cfg.loss)
    stream = ShardStream(expand_shards(cfg.data.shards), cfg, bundle.codec, bundle.vocab, train=True)
    log_path = out / "train_log.csv"
    rows: list[dict[str, Any]] = _read_log(log_path, state["step"])
    eval_rows: list[dict[str, Any]] = _read_log(out / "eval_log.csv", state["step"])
    step, epoch, done_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
    interval, obj_sum, obj_n, tokens, t_train = LossStats(), 0.0, 0, 0, 0.0
    t_start = time.perf_counter()
    bar = tqdm(
        total=cfg.optim.max_steps, initial=step, disable=not cfg.run.progress, desc="train", unit="step"
    )
    total_tokens, total_time = 0, 0.0
    while step < cfg.optim.max_steps:
        stream.set_epoch(epoch)
        n_batches = 0
        for bi, batch in enumerate(make_loader(stream, cfg.data.batch_size, cfg.data.num_workers)):
            n_batches += 1
            if bi < done_in_epoch:
                continue  # replayed on resume: trained before the checkpoint
            t0 = time.perf_counter()
            batch = to_device_batch(batch, device)
            model.train()
            with autocast_ctx(cfg, device):
                logits = model(batch["input_ids"], batch["user_slot"], batch["user_feats"])
            loss, stats = channel_loss(logits, batch, table, bundle.vocab)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optim.step()
            sched.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            n_tok = int((batch["input_ids"] != PAD).sum())
            step += 1
            done_in_epoch = bi + 1
            interval.merge(stats)
            obj_sum, obj_n, tokens, t_train = (
                obj_sum + float(loss.detach()),
                obj_n + 1,
                tokens + n_tok,
                t_train + dt,
            )
            total_tokens, total_time = total_tokens + n_tok, total_time + dt
            bar.update(1)
            if step % cfg.run.log_every == 0 or step == cfg.optim.max_steps:
                means = interval.means()
                row = {
                    "step": step,
                    "epoch": epoch,
                    "lr": f"{sched.get_last_lr()[0]:.6g}",
                    "loss": f"{obj_sum / obj_n:.6f}",
                    **{f"loss_{k}": f"{means.get(k, float('nan')):.6f}" for k in REPORTED},
                    "tokens": tokens,
                    "tok_per_s": f"{tokens / max(t_train, 1e-9):.1f}",
                    "elapsed_s": f"{time.perf_counter() - t_start:.1f}",
                }
                rows.append(row)
                _write_log(log_path, rows, LOG_FIELDS)
                bar.set_postfix(loss=row["loss"])
                interval, obj_sum, obj_n, tokens, t_train = LossStats(), 0.0, 0, 0, 0.0
            state = {"step": step, "epoch": epoch, "batch_in_epoch": done_in_epoch}
            if step % cfg.run.ckpt_every == 0 or step == cfg.optim.max_steps:
                save_checkpoint(last, bundle, optim, sched, state)
                if step % cfg.run.ckpt_every == 0:
                    save_checkpoint(out / "ckpt" / f"step_{step:07d}.pt", bundle, optim, sched, state)
            if cfg.data.eval_shards and cfg.run.eval_every and step % cfg.run.eval_every == 0:
                eval_rows.append(_eval_row(bundle, cfg, device, step))
                _write_log(out / "eval_log.csv", eval_rows, list(eval_rows[-1]))
            if step >= cfg.optim.max_steps:
                break
        else:
            if n_batches == 0:
                raise ValueError(f"the training shards {cfg.data.shards!r} yield no batch")
            epoch, done_in_epoch = epoch + 1, 0
    bar.close()
    summary: dict[str, Any] = {
        "step": step,
        "final": rows[-1] if rows else {},
        "tok_per_s": total_tokens / total_time if total_time else float("nan"),
        "n_params": model.n_params(),
        "device": str(device),
        "checkpoint": str(last),
    }
    if cfg.data.eval_shards and (not eval_rows or int(eval_rows[-1]["step"]) != step):
        eval_rows.append(_eval_row(bundle, cfg, device, step))
        _write_log(out / "eval_log.csv", eval_rows, list(eval_rows[-1]))
    if eval_rows:
        summary["eval"] = eval_rows[-1]
    if rows:
        summary["loss_curve"] = str(plot_curves(out))
    return summary


def _eval_row(bundle: Bundle, cfg: TrainConfig, device: torch.device, step: int) -> dict[str, Any]:
    assert cfg.data.eval_shards is not None
    return {"step": step, **flat_row(evaluate(bundle, expand_shards(cfg.data.eval_shards), device))}
