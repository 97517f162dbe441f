"""Speech benchmark (issue 3): the ``tiny`` aligner against espeak-ng's native word times on
held-out voices and texts, the aligner's real-time factor on CPU, and the TTS real-time factor.

``make bench BENCH=speech`` (env ``BENCH_SPEECH_N`` changes the utterance count, default 240).
Held out = voice variants and words :mod:`duplexloom.aligners.train_tiny` never trains on.
"""

from __future__ import annotations

import os
import time

import numpy as np

from duplexloom.aligners import get_aligner
from duplexloom.aligners.train_tiny import Corpus, is_held_out_variant
from duplexloom.schemas.units import chunk_samples

SR = 16_000
TARGETS = {"median_ms": 30.0, "p95_ms": 80.0, "chunk_mismatch_pct": 5.0}


def main() -> None:
    n = int(os.environ.get("BENCH_SPEECH_N", "240"))
    corpus = Corpus("heldout")
    assert all(is_held_out_variant(v) for v in corpus.variants)
    # One torch thread, as in the pipeline (torch_threads: 1): with one per core the aligner's
    # speed swings ~50x with whatever else runs on the machine (OpenMP spin-waiting).
    aligner = get_aligner("tiny", threads=1)
    chunk = chunk_samples(SR)
    errors: dict[str, list[int]] = {"en": [], "zh": []}
    chunk_miss = {"en": 0, "zh": 0}
    skipped = 0
    tts_s = align_s = audio_s = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        item = corpus.item(20_240_601, i)
        tts_s += time.perf_counter() - t0
        audio_s += item.audio.size / SR
        t0 = time.perf_counter()
        al = aligner.align(item.audio, SR, item.text, item.lang)
        align_s += time.perf_counter() - t0
        if len(item.native_starts) != len(al.words):
            skipped += 1  # espeak reported no event for some word: nothing to compare against
            continue
        for (word, native), w in zip(item.native_starts, al.words, strict=True):
            assert word == w.text
            errors[item.lang].append(abs(w.start_samples - native))
            chunk_miss[item.lang] += (w.start_samples // chunk) != (native // chunk)
    print(
        f"held-out utterances: {n} ({audio_s / 60:.1f} min audio), compared {n - skipped}, skipped {skipped}"
    )
    print(f"voices: {', '.join(corpus.variants)}")
    rows = []
    for lang in ("en", "zh", "all"):
        e = np.array(errors["en"] + errors["zh"] if lang == "all" else errors[lang]) / SR * 1000
        miss = sum(chunk_miss.values()) if lang == "all" else chunk_miss[lang]
        rows.append((lang, e.size, np.median(e), np.percentile(e, 95), 100 * miss / max(e.size, 1)))
    print(f"{'lang':>4} {'words':>6} {'median ms':>10} {'p95 ms':>8} {'chunk mismatch %':>17}")
    for lang, count, med, p95, miss in rows:
        print(f"{lang:>4} {count:>6} {med:>10.1f} {p95:>8.1f} {miss:>17.2f}")
    _, _, med, p95, miss = rows[-1]
    print(
        f"word-start error median {med:.1f} ms (target <= {TARGETS['median_ms']:.0f}, ratio "
        f"{med / TARGETS['median_ms']:.2f}); p95 {p95:.1f} ms (target <= {TARGETS['p95_ms']:.0f}, ratio "
        f"{p95 / TARGETS['p95_ms']:.2f}); chunk mismatch {miss:.2f} % (target <= "
        f"{TARGETS['chunk_mismatch_pct']:.0f}, ratio {miss / TARGETS['chunk_mismatch_pct']:.2f})"
    )
    print(f"aligner RTF (tiny, CPU, {os.cpu_count()} cores shared): {align_s / audio_s:.4f}")
    print(f"TTS RTF (espeak incl. resampling to 16 kHz): {tts_s / audio_s:.4f}")


if __name__ == "__main__":
    main()
