"""Speech benchmark (issues 3 and 15): the ``tiny`` aligner's word **starts and ends** against the
synthesizer's own timings, side by side on three sets, plus the aligner's and espeak's real-time
factors.

``make bench BENCH=speech`` (env ``BENCH_SPEECH_N``: utterances per set, default 120; the festival
set uses half as many per voice; ``BENCH_SPEECH_MODEL_DIR``: another run of the training script).

- (a) ``train-dist``: the training distribution: training espeak-ng variants and accents, training
  words, through the training augmentation chain (:mod:`duplexloom.aligners.augment`), fresh
  draws (a seed training never used).
- (b) ``heldout-espeak``: espeak-ng variants and an accent never heard in training, texts with
  words never seen in training, clean.
- (c) ``festival``: another engine the model never heard: festival's ``cmu_us_slt_arctic_hts``
  (statistical-parametric voice built from a woman's recordings) and ``kal_diphone`` (concatenated
  diphones of a man's recordings), English only, clean. No neural TTS voice installs offline from
  the package registries without fetching weights at run time, so this is the closest stand-in;
  piper voices are deliberately never used anywhere (an independent check uses one).

Truth. espeak-ng reports word starts; a word's end is the next word's start, or, where a pause
(>= 80 ms of digital silence) or the utterance end follows, the last non-silent sample of the
*clean* engine output before it. festival gives each word's start and end from its segment times.
Aligned ends are measured on the augmented audio against the clean truth (so reverb tails count
as errors). A "wrong chunk" is a boundary in another 160 ms chunk than the truth (ends: the chunk
holding the last sample).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duplexloom.aligners import get_aligner
from duplexloom.aligners.train_tiny import augmented
from duplexloom.schemas.units import chunk_samples
from duplexloom.tools.aligner_model import Corpus, is_held_out_variant
from duplexloom.tts_adapters.resample import resample
from duplexloom.tts_adapters.text_units import word_units

SR = 16_000
GOAL = {"start_median_ms": 20, "start_p95_ms": 60, "end_median_ms": 20, "end_p95_ms": 60, "chunk_pct": 5}
FESTIVAL_VOICES = ("cmu_us_slt_arctic_hts", "kal_diphone")
PAUSE_MS = 80
SILENT = 1e-4  # |x| below this in the clean engine output: digital silence


@dataclass
class Case:
    """One utterance to align: the audio the aligner hears and the true word (start, end)."""

    audio: np.ndarray
    text: str
    lang: str
    truth: list[tuple[int, int]]


def espeak_truth(clean: np.ndarray, starts: list[int]) -> list[tuple[int, int]]:
    """(start, end) per word of clean espeak-ng output (see the module docstring)."""
    loud = np.abs(clean) >= SILENT
    pause = SR * PAUSE_MS // 1000
    out = []
    for k, s in enumerate(starts):
        nxt = starts[k + 1] if k + 1 < len(starts) else clean.size
        seg = np.flatnonzero(loud[s:nxt])
        last = s + int(seg[-1]) + 1 if seg.size else s + 1
        out.append((s, last if (k + 1 == len(starts) or nxt - last >= pause) else nxt))
    return out


def espeak_cases(split: str, n: int, seed: int, augment: bool) -> tuple[list[Case], list[str], float]:
    corpus = Corpus(split)
    cases: list[Case] = []
    tts_s = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        item = corpus.item(seed, i)
        tts_s += time.perf_counter() - t0
        if len(item.native_starts) != len(word_units(item.text, item.lang)):
            continue  # espeak reported no event for some word: nothing to compare against
        truth = espeak_truth(item.audio, [t for _, t in item.native_starts])
        audio = item.audio
        if augment:
            from duplexloom.tts_adapters.speakers import seeded_rng

            rng = seeded_rng(seed, f"{split}:{i}", "bench_augment")
            aug = augmented(item, rng)
            scale = aug.audio.size / max(item.audio.size, 1)
            audio = aug.audio
            truth = [(int(round(s * scale)), int(round(e * scale))) for s, e in truth]
        cases.append(Case(audio, item.text, item.lang, truth))
    return cases, corpus.variants, tts_s


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_cases(voice: str, texts: list[str]) -> list[Case]:
    """Synthesize ``texts`` with festival ``voice`` in one festival process; word times from its
    Word relation. Utterances whose festival words do not match our word units are left out."""
    with tempfile.TemporaryDirectory() as d:
        lines = [f"(voice_{voice})"]
        for i, text in enumerate(texts):
            lines.append(
                f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))"
                f'(utt.save.wave utt "{d}/{i}.wav" \'riff)'
                f'(format t "UTT {i}\\n")'
                '(mapcar (lambda (w) (format t "W %s %f %f\\n" (item.name w) (item.feat w "word_start") '
                '(item.feat w "word_end"))) (utt.relation.items utt \'Word))'
            )
        script = Path(d) / "run.scm"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True, timeout=1800)
        words: dict[int, list[tuple[str, float, float]]] = {}
        cur = -1
        for line in out.stdout.splitlines():
            if line.startswith("UTT "):
                cur = int(line.split()[1])
                words[cur] = []
            elif line.startswith("W ") and cur >= 0:
                _, name, a, b = line.split()
                words[cur].append((name, float(a), float(b)))
        import soundfile as sf

        cases = []
        for i, text in enumerate(texts):
            units = [u.text for u in word_units(text, "en")]
            got = words.get(i, [])
            if [w.lower() for w, _, _ in got] != [u.lower() for u in units] or not os.path.exists(
                f"{d}/{i}.wav"
            ):
                continue
            audio, sr = sf.read(f"{d}/{i}.wav", dtype="float32", always_2d=False)
            audio = resample(audio, sr, SR)
            truth = [(int(round(a * SR)), int(round(b * SR))) for _, a, b in got]
            cases.append(Case(audio, text, "en", truth))
        return cases


def evaluate(aligner, cases: list[Case]) -> tuple[dict[str, dict[str, np.ndarray]], float, float]:
    """Per language: start and end errors (samples) and wrong-chunk flags; align seconds, audio
    seconds."""
    chunk = chunk_samples(SR)
    out: dict[str, dict[str, list]] = {}
    align_s = audio_s = 0.0
    for c in cases:
        t0 = time.perf_counter()
        al = aligner.align(c.audio, SR, c.text, c.lang)
        align_s += time.perf_counter() - t0
        audio_s += c.audio.size / SR
        d = out.setdefault(c.lang, {"start": [], "end": [], "start_chunk": [], "end_chunk": []})
        for w, (ts, te) in zip(al.words, c.truth, strict=True):
            d["start"].append(abs(w.start_samples - ts))
            d["end"].append(abs(w.end_samples - te))
            d["start_chunk"].append(w.start_samples // chunk != ts // chunk)
            d["end_chunk"].append((w.end_samples - 1) // chunk != (te - 1) // chunk)
    arr = {lang: {k: np.asarray(v) for k, v in d.items()} for lang, d in out.items()}
    return arr, align_s, audio_s


def row(name: str, lang: str, d: dict[str, np.ndarray]) -> str:
    ms = 1000 / SR
    s, e = d["start"] * ms, d["end"] * ms
    return (
        f"{name:<15} {lang:>4} {s.size:>6} {np.median(s):>9.1f} {np.percentile(s, 95):>8.1f} "
        f"{np.median(e):>9.1f} {np.percentile(e, 95):>8.1f} "
        f"{100 * d['start_chunk'].mean():>10.1f} {100 * d['end_chunk'].mean():>8.1f}"
    )


def main() -> None:
    n = int(os.environ.get("BENCH_SPEECH_N", "120"))
    model_dir = os.environ.get("BENCH_SPEECH_MODEL_DIR") or None
    aligner = get_aligner("tiny", threads=1, model_dir=model_dir)  # one torch thread, as in the pipeline
    sets: list[tuple[str, list[Case]]] = []
    a_cases, _, _ = espeak_cases("train", n, 20_260_001, augment=True)
    sets.append(("(a) train-dist", a_cases))
    b_cases, b_variants, tts_s = espeak_cases("heldout", n, 20_240_601, augment=False)
    assert all(is_held_out_variant(v) for v in b_variants)
    sets.append(("(b) held-out", b_cases))
    if shutil.which("festival"):
        corpus = Corpus("heldout")
        from duplexloom.tts_adapters.speakers import seeded_rng

        texts = [corpus.text(seeded_rng(7, str(i), "bench_festival"), "en") for i in range(n // 2)]
        texts = [re.sub(r"\s+", " ", t) for t in texts]
        for voice in FESTIVAL_VOICES:
            sets.append((f"(c) {voice[:11]}", festival_cases(voice, texts)))
    else:
        print(
            "(c) skipped: festival is not installed (apt-get install festival festvox-kallpc16k festvox-us-slt-hts)"
        )
    print(f"held-out espeak variants: {', '.join(b_variants)}")
    hdr = f"{'set':<15} {'lang':>4} {'words':>6} {'start med':>9} {'p95':>8} {'end med':>9} {'p95':>8} "
    print(hdr + f"{'chunk% st':>10} {'end':>8}   (errors in ms)")
    align_s = audio_s = 0.0
    for name, cases in sets:
        res, a_s, au_s = evaluate(aligner, cases)
        align_s += a_s
        audio_s += au_s
        for lang in sorted(res):
            print(row(name, lang, res[lang]))
    g = GOAL
    print(
        f"{'goal (b), (c)':<15} {'':>4} {'':>6} {g['start_median_ms']:>9} {g['start_p95_ms']:>8} "
        f"{g['end_median_ms']:>9} {g['end_p95_ms']:>8} {g['chunk_pct']:>10} {g['chunk_pct']:>8}"
    )
    print(f"aligner RTF (tiny, CPU, 1 thread, {os.cpu_count()} cores shared): {align_s / audio_s:.4f}")
    b_audio = sum(c.audio.size for c in b_cases) / SR
    print(f"TTS RTF (espeak incl. resampling to 16 kHz, set b): {tts_s / max(b_audio, 1e-9):.4f}")


if __name__ == "__main__":
    main()
