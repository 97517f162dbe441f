"""Train the bundled ``tiny`` CTC aligner on synthesized speech: the training loop, the word-onset
targets, the two recipes' augmentation, the onset calibration and the model files.

The corpus comes from the caller (an :class:`ItemSource`: ``item(seed, index)`` -> :class:`Item`);
``duplexloom/tools/aligner_model.py`` synthesizes it with espeak-ng and is the command
(``python -m duplexloom.tools.aligner_model``, ``make aligner-model``): this module drives no TTS
backend, so ``aligners/`` does not import ``tts_adapters/`` (tests/test_layering.py).
Deterministic: every draw comes from generators seeded by (seed, item, stage), torch runs
single-process with fixed threads and deterministic algorithms, and the output is ``tiny_ctc.pt``
(float16 weights, ~1.4 MB) + ``tiny_ctc.json`` (labels, model config, per-language onset
calibration, the onset head's inference settings, and the model card the tool passes in: recipe,
engine, voices, accents, voice ranges, text, augmentation, the stage it continued from, the sha256
of the weights). Besides the CTC loss, the word-onset head learns the engine's native word starts
of the training utterances (:func:`onset_targets`).
Input records: none; output: the two model files. No reject codes.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from duplexloom.schemas.rng import seeded_rng

from .augment import CHAIN, CODECS, NOISES
from .augment import augment as augment_audio
from .ctc_path import align_frames
from .onsets import head_onsets, offset_key, onset_features
from .romanize import text_to_units
from .tiny import load_tiny
from .tiny_model import LABELS, TinyConfig, TinyCTC, frame_outputs

SAMPLE_RATE = 16_000
# "base": the first bundled model's (gain and white noise); "varied": the augmentation chain.
RECIPES = ("base", "varied")


@dataclass
class Item:
    """One training utterance: audio at SAMPLE_RATE, its text and language, the engine's native
    word starts (samples, for the onset head) and the CTC label ids."""

    audio: np.ndarray
    text: str
    lang: str
    native_starts: list[tuple[str, int]]
    labels: list[int]


class ItemSource(Protocol):
    """A training corpus: the same (seed, index) gives the same item."""

    def item(self, seed: int, index: int, pad: bool = True) -> Item: ...


ONSET_SIGMA_SAMPLES = 192  # width of the soft onset target (12 ms): sub-frame peaks via log-parabola
ONSET_LOSS_WEIGHT = 3.0
# Inference settings of the head (see onsets.head_onsets), chosen on training-voice utterances
# (lowest mean onset error among 3-10 frames back and 0.05-0.4): wider windows let a word take a
# syllable onset inside the previous word more often than they catch a late vowel spike.
ONSET_BACK_FRAMES = 3
ONSET_MIN_PROB = 0.2


def onset_targets(batch: list[Item], n_frames: int, frame_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft per-frame word-onset targets ``[B, n_frames]`` (a Gaussian bump of
    ``ONSET_SIGMA_SAMPLES`` around each of espeak's native word starts, frame ``t`` centered at
    ``t * frame_samples``) and the mask of frames inside each item's audio. An item without native
    times (espeak reported none) is masked out entirely."""
    y = np.zeros((len(batch), n_frames), np.float32)
    mask = np.zeros((len(batch), n_frames), np.float32)
    centers = np.arange(n_frames, dtype=np.float64) * frame_samples
    for r, it in enumerate(batch):
        if not it.native_starts:
            continue
        mask[r, : min(n_frames, it.audio.size // frame_samples + 1)] = 1.0
        for _, start in it.native_starts:
            y[r] = np.maximum(y[r], np.exp(-0.5 * ((centers - start) / ONSET_SIGMA_SAMPLES) ** 2))
    return y, mask


def augment_base(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The base recipe's augmentation: random gain and, most of the time, white noise at 15-45 dB
    SNR (on the zero-padded batch rows)."""
    out = audio * np.float32(rng.uniform(0.2, 1.0))
    if rng.random() < 0.7:
        power = float(np.mean(out**2)) + 1e-12
        snr_db = rng.uniform(15, 45)
        out = out + rng.standard_normal(out.size).astype(np.float32) * np.float32(
            np.sqrt(power / 10 ** (snr_db / 10))
        )
    return out.astype(np.float32)


def augmentation_card() -> dict:
    return {
        "probabilities": asdict(CHAIN),
        "warp_percent": [-12, 12],
        "eq_db": [-10, 10],
        "band": ["telephone 200-400..3200-3600 Hz", "low-pass 2.5-6.5 kHz", "high-pass 150-500 Hz"],
        "reverb_rt60_s": [0.1, 0.9],
        "noise": {"kinds": list(NOISES), "snr_db": [5, 40]},
        "codecs": list(CODECS),
        "peak_dbfs": [-35, -0.5],
        "lead_tail_silence_s": [0, 0.3],
    }


def augmented(item: Item, rng: np.random.Generator) -> Item:
    """``item`` through the augmentation chain (:mod:`.augment`), word times scaled with it."""
    audio, scale = augment_audio(item.audio, SAMPLE_RATE, rng)
    starts = [(w, int(round(t * scale))) for w, t in item.native_starts]
    return Item(audio, item.text, item.lang, starts, item.labels)


def train(
    corpus: ItemSource,
    out_dir: Path,
    steps: int,
    n_utts: int,
    seed: int,
    batch: int,
    threads: int,
    cfg: TinyConfig,
    log_every: int = 50,
    recipe: str = "varied",
    init: Path | None = None,
    lr: float = 3e-3,
) -> dict:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    items = [corpus.item(seed, i) for i in range(n_utts)]
    t_data = time.perf_counter() - t0
    hours = sum(it.audio.size for it in items) / SAMPLE_RATE / 3600
    print(f"synthesized {n_utts} utterances ({hours:.2f} h) in {t_data:.0f} s", flush=True)
    order = sorted(range(n_utts), key=lambda i: (items[i].audio.size, i))
    batches = [order[i : i + batch] for i in range(0, n_utts, batch)]
    model = TinyCTC(cfg)
    if init is not None:  # a second stage continues from a first stage's weights
        first, meta = load_tiny(init)
        if meta["model"] != cfg.to_dict():
            raise ValueError(f"{init}: model config {meta['model']} differs from {cfg.to_dict()}")
        model.load_state_dict(first.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    warm = max(1, steps // 15)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + np.cos(np.pi * (step - warm) / max(1, steps - warm))) * 0.97 + 0.03

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    losses: list[float] = []
    for step in range(steps):
        rng = seeded_rng(seed, str(step), "train_tiny_step")
        idx = batches[int(rng.integers(len(batches)))]
        batch_items = (
            [augmented(items[i], rng) for i in idx] if recipe == "varied" else [items[i] for i in idx]
        )
        max_len = max(it.audio.size for it in batch_items)
        x = np.zeros((len(idx), max_len), np.float32)
        for r, it in enumerate(batch_items):
            x[r, : it.audio.size] = it.audio
        if recipe == "base":
            x = np.stack([augment_base(row, rng) for row in x])
        targets = torch.tensor([lab for it in batch_items for lab in it.labels], dtype=torch.long)
        target_lens = torch.tensor([len(it.labels) for it in batch_items], dtype=torch.long)
        in_lens = torch.tensor([model.n_frames(it.audio.size) for it in batch_items], dtype=torch.long)
        lp, onset_logit = model.forward_all(torch.from_numpy(x))  # [B, T, C], [B, T]
        loss = ctc(lp.transpose(0, 1), targets, in_lens, target_lens)
        if onset_logit is not None:
            y, mask = onset_targets(batch_items, lp.shape[1], cfg.frame_samples)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                onset_logit, torch.from_numpy(y), weight=torch.from_numpy(mask), reduction="sum"
            ) / float(mask.sum())
            loss = loss + ONSET_LOSS_WEIGHT * bce
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step == 0:
            print(
                f"step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.3f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    model.eval()
    return {
        "model": model,
        "items_hours": hours,
        "final_loss": float(np.mean(losses[-50:])),
        "train_seconds": time.perf_counter() - t0,
    }


def calibrate(
    model, cfg: TinyConfig, corpus: ItemSource, seed: int, n: int, min_count: int = 12
) -> tuple[dict[str, int], dict, dict]:
    """Onset calibration on fresh utterances of ``corpus`` (training voices, never held-out ones;
    items ``10_000_000 + i`` of ``seed + 1``, none of which trained the model): the median
    shift (model-rate samples) from a word's first-label frame to espeak's native word start per
    language, per first label and per first two labels (keys with >= ``min_count`` words), then a
    per-language least-squares correction on the first label's posteriors around that frame; with
    an onset head, the per-language median shift from the head's peak to the native start."""
    rows: list[tuple[str, list[str], int, np.ndarray]] = []  # (lang, labels, residual, features)
    head_res: dict[str, list[float]] = {}
    for i in range(n):
        it = corpus.item(seed + 1, 10_000_000 + i)
        units = text_to_units(it.text, it.lang, LABELS)
        lp, onset_prob = frame_outputs(model, it.audio)
        path = align_frames(lp, units, LABELS)
        if len(it.native_starts) != len(units):
            continue
        if onset_prob is not None:
            heads = head_onsets(
                onset_prob,
                [ls[0] for ls in path.label_starts],
                cfg.frame_samples,
                back_frames=ONSET_BACK_FRAMES,
                min_prob=ONSET_MIN_PROB,
                offset_samples=0.0,
            )
            for h, (_, native) in zip(heads, it.native_starts, strict=True):
                if h is not None:
                    head_res.setdefault(it.lang, []).append(native - h)
        for (_, native), ls, u in zip(it.native_starts, path.label_starts, units, strict=True):
            feats = onset_features(lp, ls[0], LABELS.index(u.labels[0]))
            rows.append((it.lang, u.labels, native - ls[0] * cfg.frame_samples, feats))
    groups: dict[str, list[int]] = {}
    for lang, labels, r, _ in rows:
        for key in (lang, f"{lang}:{labels[0]}", f"{lang}:{''.join(labels[:2])}"):
            groups.setdefault(key, []).append(r)
    offsets = {k: int(np.median(v)) for k, v in sorted(groups.items()) if ":" not in k or len(v) >= min_count}
    refine: dict[str, list[float]] = {}
    for lang in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == lang]
        y = np.array([r[2] - offsets[offset_key(offsets, lang, r[1])] for r in sel], np.float64)
        x = np.array([np.concatenate([[1.0], r[3]]) for r in sel])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        refine[lang] = [round(float(c), 3) for c in coef]
    head = {}
    if cfg.onset_head:
        head = {
            "back_frames": ONSET_BACK_FRAMES,
            "min_prob": ONSET_MIN_PROB,
            "offset_samples": {lang: int(round(np.median(v))) for lang, v in sorted(head_res.items())},
        }
    return offsets, refine, head


def save(
    out_dir: Path, model, cfg: TinyConfig, offsets: dict[str, int], refine: dict, head: dict, info: dict
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    # float16 halves the file; the aligner casts back to float32 on load.
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    (out_dir / "tiny_ctc.pt").write_bytes(blob)
    meta = {
        "labels": list(LABELS),
        "model": cfg.to_dict(),
        "start_offset_samples": offsets,
        "start_refine": refine,
        "onset_head": head,
        "training": info,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    (out_dir / "tiny_ctc.json").write_text(
        json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return out_dir / "tiny_ctc.pt"
