"""Make the bundled ``tiny`` aligner model: synthesize its training corpus with espeak-ng and train
it (``duplexloom.aligners.train_tiny``).

``python -m duplexloom.tools.aligner_model [--recipe base|varied] [--init DIR] [--out DIR]
[--steps N] [--utterances N]``; ``make aligner-model`` runs the two stages the bundled model was
made with: ``base`` from scratch, then ``varied`` continuing from it (``--init``). A tool above
both ``tts_adapters/`` and ``aligners/`` (tests/test_layering.py): it drives the TTS backend and
the speaker library to make the aligner's corpus, which the aligners package itself may not.

Data: English word sequences drawn from the English text shipped with Python (``pydoc_data``) and
Chinese phrase sequences from pypinyin's phrase list, with random leading/trailing silence.
``base``: the speaker library's espeak-ng variants and accents, moderate rate/pitch/range, gain
and white noise. ``varied``: every espeak-ng variant (robotic, whispered, Klatt ones too), one more
accent, wide rate/pitch/range, and the augmentation chain of ``aligners/augment.py`` (warp, EQ,
band limits, reverb, colored noise, codec round trips, level). A fixed set of variants, one accent
and 1 word in 8 are *held out* (:data:`HELD_OUT_VARIANTS`, :data:`HELD_OUT_ACCENTS`,
:func:`is_held_out_word`): the benchmark's held-out set speaks with those only, so it measures
voices and words the model never heard. Every draw comes from generators seeded by (seed, item,
stage). Input records: none; output: the two model files (``tiny_ctc.pt``, ``tiny_ctc.json``).
No reject codes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pydoc_data.topics as topics
import re
import subprocess
from pathlib import Path

import numpy as np
from pypinyin.phrases_dict import phrases_dict

from duplexloom.aligners.romanize import text_to_units
from duplexloom.aligners.tiny import MODEL_DIR
from duplexloom.aligners.tiny_model import LABELS, TinyConfig
from duplexloom.aligners.train_tiny import (
    RECIPES,
    SAMPLE_RATE,
    Item,
    augmentation_card,
    calibrate,
    save,
    train,
)
from duplexloom.schemas import RejectError, Speaker
from duplexloom.schemas.rng import seeded_rng
from duplexloom.tts_adapters.espeak import EspeakConfig, EspeakTTS
from duplexloom.tts_adapters.speakers import ASSISTANT_VOICES, USER_ACCENTS, USER_VARIANTS

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
    cjk = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
    return sorted(p for p in phrases_dict if cjk.match(p))


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


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    return out.split("Data at")[0].replace("eSpeak NG text-to-speech:", "").strip() or "unknown"


RECIPE_DEFAULTS = {
    "base": {"steps": 900, "utterances": 5000, "batch": 24, "lr": 3e-3, "calibration": 800},
    "varied": {"steps": 800, "utterances": 2400, "batch": 16, "lr": 1e-3, "calibration": 400},
}


def main(argv: list[str] | None = None) -> int:
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
        Corpus("train", args.recipe),
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
    # a corpus of its own, as before: the engine's state carries over from one call to the next
    offsets, refine, head = calibrate(
        res["model"], cfg, Corpus("train", args.recipe), args.seed, args.calibration
    )
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
