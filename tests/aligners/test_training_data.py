"""The tiny model's training data: the augmentation chain keeps word times true and is seeded, and
what the benchmark calls held out is out of training by construction."""

from __future__ import annotations

import re

import numpy as np
import pytest

from duplexloom.aligners import augment as aug
from duplexloom.aligners.train_tiny import Item, augmented
from duplexloom.tools.aligner_model import (
    ALL_VARIANTS,
    HELD_OUT_ACCENTS,
    HELD_OUT_VARIANTS,
    TRAIN_ACCENTS,
    Corpus,
    is_held_out_word,
)
from duplexloom.tts_adapters.espeak import EspeakTTS

SR = 16_000


def clicks(n: int, at: list[int]) -> np.ndarray:
    x = np.zeros(n, np.float32)
    for t in at:
        x[t : t + 40] = np.hanning(40).astype(np.float32) * 0.8
    return x


def peaks(x: np.ndarray, k: int) -> list[int]:
    """The k largest, mutually > 800 samples apart, sorted."""
    order = np.argsort(-np.abs(x))
    got: list[int] = []
    for i in order:
        if all(abs(int(i) - g) > 800 for g in got):
            got.append(int(i))
        if len(got) == k:
            break
    return sorted(got)


@pytest.mark.parametrize("codec", aug.CODECS)
def test_codec_round_trips_keep_times_and_length(codec):
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.3) * (t < 0.7)).astype(np.float32)
    x = x + clicks(SR, [2000, 14000])
    y = aug.codec_round_trip(x, SR, codec)
    assert y.size == x.size
    onset = lambda z: int(np.flatnonzero(np.abs(z[3000:]) > 0.1)[0]) + 3000  # noqa: E731
    assert abs(onset(y) - onset(x)) <= 40  # the tone starts where it did (codec delay removed)


def test_filters_reverb_and_warp():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR).astype(np.float32) * 0.1
    tel = aug.spectral_curve(
        x, SR, np.array([-60.0, 0.0, 0.0, -60.0]), np.array([100.0, 400.0, 3400.0, 5000.0])
    )
    spec = np.abs(np.fft.rfft(tel)) ** 2
    f = np.fft.rfftfreq(tel.size, 1 / SR)
    assert spec[f > 5500].sum() < 1e-4 * spec[(f > 500) & (f < 3000)].sum()
    c = clicks(SR, [4000])
    wet = aug.reverb(c, SR, np.random.default_rng(1))
    assert wet.size == c.size and int(np.argmax(np.abs(wet))) == int(np.argmax(np.abs(c)))
    assert np.abs(wet[6000:]).max() > 0  # a tail after the direct sound
    fast = aug.warp(clicks(SR, [8000]), SR, 10)
    assert fast.size == round(SR * 100 / 110)
    assert abs(int(np.argmax(np.abs(fast))) - 8020 * 100 / 110) < 10


def test_augmented_items_scale_word_times_and_are_seeded():
    item = Item(clicks(2 * SR, [4000, 20000]), "a b", "en", [("a", 4000), ("b", 20000)], [2, 3])
    for seed in range(12):
        a = augmented(item, np.random.default_rng(seed))
        b = augmented(item, np.random.default_rng(seed))
        assert np.array_equal(a.audio, b.audio) and a.native_starts == b.native_starts
        scale = a.audio.size / item.audio.size
        assert [t for _, t in a.native_starts] == [round(4000 * scale), round(20000 * scale)]
        assert a.labels == item.labels and a.text == item.text
        # The clicks are still where the scaled times say (noise/reverb/codec permitting).
        found = peaks(a.audio, 2)
        assert all(abs(p - t - 20 * scale) < 60 for p, (_, t) in zip(found, a.native_starts, strict=True)), (
            seed
        )


def test_held_out_voices_accents_and_words_are_never_in_training():
    assert HELD_OUT_VARIANTS <= set(ALL_VARIANTS) and not set(HELD_OUT_ACCENTS) & set(TRAIN_ACCENTS)
    train, held = Corpus("train"), Corpus("heldout")
    assert isinstance(train.tts, EspeakTTS)  # the only engine training hears (festival never)
    assert not set(train.variants) & HELD_OUT_VARIANTS and set(held.variants) == HELD_OUT_VARIANTS
    assert not set(train.accents) & set(HELD_OUT_ACCENTS)
    assert not any(is_held_out_word(w) for w in train.en + train.zh)
    from duplexloom.tts_adapters.speakers import seeded_rng

    for i in range(200):
        rng = seeded_rng(1234, f"train:{i}", "train_tiny_item")
        text = train.text(rng, "en" if i % 2 == 0 else "zh")
        sp = train.speaker(rng)
        assert sp.engine_params["variant"] not in HELD_OUT_VARIANTS
        assert sp.engine_params["en_voice"] not in HELD_OUT_ACCENTS
        if i % 2 == 0:
            assert not any(is_held_out_word(w.lower()) for w in re.findall(r"[A-Za-z]+", text))
    # Every held-out text has a word training never saw.
    rng = seeded_rng(1, "h", "t")
    assert any(is_held_out_word(w.lower()) for w in re.findall(r"[A-Za-z]+", held.text(rng, "en")))


def test_no_piper_voice_anywhere_in_training_or_benches():
    from tests.bench.bench_speech import FESTIVAL_VOICES

    names = [*ALL_VARIANTS, *TRAIN_ACCENTS, *HELD_OUT_ACCENTS, *FESTIVAL_VOICES]
    assert not [n for n in names if "piper" in n.lower()]
