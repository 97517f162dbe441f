"""Train the bundled ``tiny`` CTC aligner on espeak-ng speech this script synthesizes.

``python -m duplexloom.aligners.train_tiny [--recipe base|varied] [--init DIR] [--out DIR]
[--steps N] [--utterances N]``; ``make aligner-model`` runs the two stages the bundled model was
made with: ``base`` from scratch, then ``varied`` continuing from it (``--init``). Deterministic:
every draw comes from generators seeded by (seed, item, stage), torch runs single-process with fixed
threads and deterministic algorithms, and the output is ``tiny_ctc.pt`` (float16 weights, ~1.4 MB)
+ ``tiny_ctc.json`` (labels, model config, per-language onset calibration, the onset head's
inference settings, and the model card: recipe, engine, voices, accents, voice ranges, text,
augmentation, the stage it continued from, the sha256 of the weights). Besides the CTC loss, the
word-onset head learns espeak's native word starts of the training utterances
(:func:`onset_targets`).

Data: English word sequences drawn from the English text shipped with Python (``pydoc_data``) and
Chinese phrase sequences from pypinyin's phrase list, with random leading/trailing silence.
``base``: the speaker library's espeak-ng variants and accents, moderate rate/pitch/range, gain
and white noise. ``varied``: every espeak-ng variant (robotic, whispered, Klatt ones too), one more
accent, wide rate/pitch/range, and the augmentation chain of :mod:`.augment` (warp, EQ, band
limits, reverb, colored noise, codec round trips, level). A fixed set of variants, one accent and
1 word in 8 are *held out* (:data:`HELD_OUT_VARIANTS`, :data:`HELD_OUT_ACCENTS`,
:func:`is_held_out_word`): the benchmark's held-out set speaks with those only, so it measures
voices and words the model never heard. Input records: none; output: the two model files. No
reject codes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duplexloom.schemas import RejectError, Speaker
from duplexloom.tts_adapters.espeak import EspeakConfig, EspeakTTS
from duplexloom.tts_adapters.speakers import ASSISTANT_VOICES, USER_ACCENTS, USER_VARIANTS, seeded_rng

from .augment import augment as augment_audio
from .romanize import text_to_units
from .tiny_model import LABELS, TinyConfig, TinyCTC

SAMPLE_RATE = 16_000
# Every espeak-ng voice variant (espeak-ng-data/voices/!v, 1.51/1.52) besides those the speaker
# library uses: robotic, whispered and Klatt-synthesizer ones too, so the model hears as many
# sources as espeak has. ("Mr serious" is left out: its name has a space.)
EXTRA_VARIANTS: tuple[str, ...] = (
    "Demonic", "RicishayMax2", "RicishayMax3", "UniRobot", "anikaRobot", "croak", "klatt5", "klatt6",
    "rob", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7",
    "robosoft8", "whisper", "whisperf",
)  # fmt: skip
_LIBRARY_VARIANTS: tuple[str, ...] = tuple(sorted(set(USER_VARIANTS) | {v[1] for v in ASSISTANT_VOICES}))
ALL_VARIANTS: tuple[str, ...] = tuple(sorted(set(_LIBRARY_VARIANTS) | set(EXTRA_VARIANTS)))
# Never heard in training: every 4th variant of the library's (sorted; the set the first models held
# out, so benchmarks stay comparable) and 4 of the extra ones.
HELD_OUT_VARIANTS: frozenset[str] = frozenset(
    [v for i, v in enumerate(_LIBRARY_VARIANTS) if i % 4 == 1]
    + ["RicishayMax3", "klatt6", "robosoft4", "whisperf"]
)
# English accents (espeak-ng voices); the last one is held out.
TRAIN_ACCENTS: tuple[str, ...] = (*USER_ACCENTS, "en-gb-x-gbcwmd")
HELD_OUT_ACCENTS: tuple[str, ...] = ("en-gb-x-gbclan",)
RECIPES = ("base", "varied")
# Speaker draws (numpy integers(lo, hi): hi exclusive): rate in words/min, pitch and range 0-100.
BASE_RANGES = {"rate": (120, 231), "pitch": (15, 91), "range": (10, 101)}
VARIED_RANGES = {"rate": (100, 261), "pitch": (0, 100), "range": (0, 101)}


def _h(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:4], "little")


def is_held_out_variant(variant: str) -> bool:
    """A variant (:data:`HELD_OUT_VARIANTS`) never heard in training."""
    return variant in HELD_OUT_VARIANTS


def is_held_out_word(word: str) -> bool:
    """About 1 word in 8 (by hash) is never seen in training."""
    return _h(word) % 8 == 0


def english_vocab() -> list[str]:
    """Frequent words of the prose shipped with Python, without identifiers and abbreviations
    (espeak spells those letter by letter, which no dialogue text does)."""
    import pydoc_data.topics as topics

    plausible = re.compile(r"^(?=.*[aeiouy])(?!.*[^aeiouy]{4})(?!.*(.)\1\1)[a-z]{2,12}$")
    counts: dict[str, int] = {}
    for doc in topics.topics.values():
        for w in re.findall(r"(?<![\w.])[A-Za-z]{2,12}(?![\w(])", doc):
            counts[w.lower()] = counts.get(w.lower(), 0) + 1
    ranked = sorted(
        (w for w in counts if counts[w] >= 3 and plausible.match(w)), key=lambda w: (-counts[w], w)
    )
    return ranked[:3000]


def chinese_vocab() -> list[str]:
    from pypinyin.phrases_dict import phrases_dict

    cjk = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
    return sorted(p for p in phrases_dict if cjk.match(p))


@dataclass
class Item:
    audio: np.ndarray
    text: str
    lang: str
    native_starts: list[tuple[str, int]]
    labels: list[int]


class Corpus:
    """Draws texts and speakers for one split (``train`` or ``heldout``)."""

    def __init__(self, split: str, recipe: str = "varied") -> None:
        held = split == "heldout"
        self.split = split
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {RECIPES}")
        self.recipe = recipe
        # Training never sees a held-out word; held-out texts may use any word.
        self.en = [w for w in english_vocab() if held or not is_held_out_word(w)]
        self.zh = [w for w in chinese_vocab() if held or not is_held_out_word(w)]
        if held:  # held-out texts always contain unseen words; the rest can be any word
            self.en_new = [w for w in english_vocab() if is_held_out_word(w)]
            self.zh_new = [w for w in chinese_vocab() if is_held_out_word(w)]
        # "base" is the first bundled model's recipe (the library's variants and accents, moderate
        # rate/pitch); "varied" adds every other espeak-ng variant, one more accent, wider ranges.
        pool = _LIBRARY_VARIANTS if recipe == "base" else ALL_VARIANTS
        self.variants = [v for v in pool if is_held_out_variant(v) == held]
        # Held-out speech may use any accent; training never hears a held-out one.
        accents = list(USER_ACCENTS) if recipe == "base" else list(TRAIN_ACCENTS)
        self.accents = [*accents, *HELD_OUT_ACCENTS] if held else accents
        self.ranges = BASE_RANGES if recipe == "base" else VARIED_RANGES
        self.tts = EspeakTTS(EspeakConfig(sample_rate=SAMPLE_RATE))

    def text(self, rng: np.random.Generator, lang: str) -> str:
        if lang == "en":
            n = int(rng.integers(3, 13))
            words = [self.en[int(rng.integers(len(self.en)))] for _ in range(n)]
            if self.split == "heldout":
                words[int(rng.integers(n))] = self.en_new[int(rng.integers(len(self.en_new)))]
            if rng.random() < 0.5:
                words[0] = words[0].capitalize()
            if n > 5 and rng.random() < 0.5:
                words[n // 2] += ","
            return " ".join(words) + str(rng.choice([".", "?", "!", ""]))
        n = int(rng.integers(2, 6))
        phrases = [self.zh[int(rng.integers(len(self.zh)))] for _ in range(n)]
        if self.split == "heldout":
            phrases[int(rng.integers(n))] = self.zh_new[int(rng.integers(len(self.zh_new)))]
        if n > 3 and rng.random() < 0.5:
            phrases[n // 2] += "，"
        return "".join(phrases) + str(rng.choice(["。", "？", "！", ""]))

    def speaker(self, rng: np.random.Generator) -> Speaker:
        variant = self.variants[int(rng.integers(len(self.variants)))]
        return Speaker(
            id=f"{self.split}_{variant}",
            role="user",
            display_name=variant,
            engine_params={
                "variant": variant,
                "en_voice": self.accents[int(rng.integers(len(self.accents)))],
                "rate": int(rng.integers(*self.ranges["rate"])),
                "pitch": int(rng.integers(*self.ranges["pitch"])),
                "range": int(rng.integers(*self.ranges["range"])),
            },
        )

    def item(self, seed: int, index: int, pad: bool = True) -> Item:
        rng = seeded_rng(seed, f"{self.split}:{index}", "train_tiny_item")
        lang = "zh" if index % 2 else "en"
        text = self.text(rng, lang)
        for _ in range(8):
            try:
                res = self.tts.synthesize([text], self.speaker(rng), lang)[0]
                break
            except RejectError as e:
                # Some variant + rate/pitch draws crash espeak-ng (the isolated engine reports it):
                # draw another speaker, deterministically.
                if e.code != "tts_engine_crash":
                    raise
        else:
            raise RuntimeError(f"espeak-ng crashed on 8 speakers for {text!r}")
        lead = int(rng.integers(0, int(0.3 * SAMPLE_RATE))) if pad else 0
        tail = int(rng.integers(0, int(0.3 * SAMPLE_RATE))) if pad else 0
        audio = np.concatenate([np.zeros(lead, np.float32), res.audio, np.zeros(tail, np.float32)])
        index_of = {lab: i for i, lab in enumerate(LABELS)}
        labels = [index_of[lab] for u in text_to_units(text, lang, LABELS) for lab in u.labels]
        starts = [(w, t + lead) for w, t in (res.word_starts_samples or [])]
        return Item(audio, text, lang, starts, labels)


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


def espeak_version() -> str:
    import subprocess

    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    return out.split("Data at")[0].replace("eSpeak NG text-to-speech:", "").strip() or "unknown"


def augmentation_card() -> dict:
    from dataclasses import asdict

    from .augment import CHAIN, CODECS, NOISES

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
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    corpus = Corpus("train", recipe)
    items = [corpus.item(seed, i) for i in range(n_utts)]
    t_data = time.perf_counter() - t0
    hours = sum(it.audio.size for it in items) / SAMPLE_RATE / 3600
    print(f"synthesized {n_utts} utterances ({hours:.2f} h) in {t_data:.0f} s", flush=True)
    order = sorted(range(n_utts), key=lambda i: (items[i].audio.size, i))
    batches = [order[i : i + batch] for i in range(0, n_utts, batch)]
    model = TinyCTC(cfg)
    if init is not None:  # a second stage continues from a first stage's weights
        from .tiny import load_tiny

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
    model, cfg: TinyConfig, seed: int, n: int, min_count: int = 12, recipe: str = "varied"
) -> tuple[dict[str, int], dict, dict]:
    """Onset calibration on fresh *training-voice* utterances (never held-out ones): the median
    shift (model-rate samples) from a word's first-label frame to espeak's native word start per
    language, per first label and per first two labels (keys with >= ``min_count`` words), then a
    per-language least-squares correction on the first label's posteriors around that frame; with
    an onset head, the per-language median shift from the head's peak to the native start."""
    from .ctc_path import align_frames
    from .onsets import head_onsets, offset_key, onset_features
    from .tiny_model import frame_outputs

    corpus = Corpus("train", recipe)
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
    import io

    import torch

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


RECIPE_DEFAULTS = {
    "base": {"steps": 900, "utterances": 5000, "batch": 24, "lr": 3e-3, "calibration": 800},
    "varied": {"steps": 800, "utterances": 2400, "batch": 16, "lr": 1e-3, "calibration": 400},
}


def main(argv: list[str] | None = None) -> int:
    from .tiny import MODEL_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--recipe", choices=RECIPES, default="varied")
    ap.add_argument("--init", type=Path, default=None, help="continue from this model directory")
    # Defaults per recipe (base: from scratch; varied: usually a second stage after base).
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--utterances", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--seed", type=int, default=1234)
    # One thread: a second one on a busy 2-core machine spin-waits (training ran ~10x slower
    # there). Determinism is per thread count, which the json records.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibration", type=int, default=None)
    ap.add_argument("--channels", type=int, default=TinyConfig.channels)
    ap.add_argument("--gru-hidden", type=int, default=TinyConfig.gru_hidden)
    ap.add_argument("--onset-head", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    for key, value in RECIPE_DEFAULTS[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    cfg = TinyConfig(channels=args.channels, gru_hidden=args.gru_hidden, onset_head=args.onset_head)
    res = train(
        args.out,
        args.steps,
        args.utterances,
        args.seed,
        args.batch,
        args.threads,
        cfg,
        recipe=args.recipe,
        init=args.init,
        lr=args.lr,
    )
    offsets, refine, head = calibrate(res["model"], cfg, args.seed, args.calibration, recipe=args.recipe)
    init_info = None
    if args.init is not None:
        prev = json.loads((args.init / "tiny_ctc.json").read_text(encoding="utf-8"))
        init_info = {"weights_sha256": prev["weights_sha256"], "training": prev["training"]}
    varied = args.recipe == "varied"
    info = {
        "recipe": args.recipe,
        "lr": args.lr,
        "init": init_info,
        "steps": args.steps,
        "utterances": args.utterances,
        "batch": args.batch,
        "seed": args.seed,
        "threads": args.threads,
        "hours": round(res["items_hours"], 3),
        "final_loss": round(res["final_loss"], 4),
        "held_out_variants": [v for v in ALL_VARIANTS if is_held_out_variant(v)],
        # The model card: what the model heard (engine, voices, text) and how it was augmented.
        "engine": "espeak-ng " + espeak_version(),
        "train_variants": Corpus("train", args.recipe).variants,
        "train_accents": Corpus("train", args.recipe).accents,
        "held_out_accents": list(HELD_OUT_ACCENTS),
        "voice_params": {
            k: [lo, hi - 1] for k, (lo, hi) in (VARIED_RANGES if varied else BASE_RANGES).items()
        },
        "text": "English: frequent words of Python's bundled docs; Chinese: pypinyin phrases; 1 word in 8 held out",
        "augmentation": augmentation_card() if varied else "gain 0.2-1, white noise 15-45 dB SNR (p=0.7)",
    }
    path = save(args.out, res["model"], cfg, offsets, refine, head, info)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); {len(offsets)} onset offsets; {res['train_seconds']:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
