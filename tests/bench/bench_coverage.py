"""How well a run's word spans cover its speech (issue 15): per language, over both tracks of every
sample, the share of speech energy inside some word span and the word spans that are mostly
silence, from the shards' audio and word times (session clock).

``make bench BENCH=coverage`` after ``make demo`` (env ``BENCH_COVERAGE_RUN``: another run's
output folder, default ``out/demo``). Target: >= 95 % of the speech energy inside word spans.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from duplexloom.aligners.energy import coverage
from duplexloom.timeline.sample_codec import decode_sample, iter_shard

TARGET = 0.95


def main() -> None:
    run = os.environ.get("BENCH_COVERAGE_RUN", "out/demo")
    shards = sorted(glob.glob(os.path.join(run, "shards", "*.tar")))
    if not shards:
        print(f"no shards under {run}/shards: run `make demo` first (or set BENCH_COVERAGE_RUN)")
        return
    rows: dict[str, list[tuple[float, int, int]]] = {}
    for shard in shards:
        with open(shard, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                tl = s.meta.timeline
                for side, audio in (("user", s.user_audio), ("assistant", s.assistant_audio)):
                    spans = [
                        (w.start_samples, w.end_samples)
                        for u in tl.utterances
                        if u.speaker == side
                        for w in u.words
                    ]
                    cv = coverage(audio, tl.sample_rate, spans)
                    rows.setdefault(tl.lang, []).append(
                        (cv.speech_in_spans, cv.mostly_silent_words, cv.words)
                    )
    print(f"run: {run} ({len(shards)} shards)")
    for lang, r in sorted(rows.items()):
        a = np.array(r, dtype=np.float64)
        print(
            f"{lang}: {len(a)} tracks; speech energy inside word spans mean {a[:, 0].mean():.4f} "
            f"min {a[:, 0].min():.4f} (target >= {TARGET}); mostly-silent word spans "
            f"{int(a[:, 1].sum())}/{int(a[:, 2].sum())}"
        )


if __name__ == "__main__":
    main()
