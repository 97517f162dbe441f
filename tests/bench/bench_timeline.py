"""Benchmark: time-merge + augmentation throughput and timing validity over every family.

Synthesizes the clips once (espeak, cached), then measures ``plan_session`` and ``build_session``
(which includes the validators) per session, and prints the per-family timing statistics, the
violation count and the reject codes. Target: build >= 200 sessions/s on one core (the merge must
never be the bottleneck next to TTS and alignment); 0 timing violations.
"""

from __future__ import annotations

import time
from collections import Counter

from duplexloom.schemas import RejectError
from duplexloom.timeline.config import FAMILIES, TimelineConfig
from duplexloom.timeline.merge import build_session, plan_session
from duplexloom.timeline.timing import check_timing, family_histograms
from tests.timeline.test_merge_fixtures import library, make_clips
from tests.timeline.test_timing import _annotation_for

TARGET_BUILD_PER_S = 200.0
SESSIONS_PER_FAMILY = 12


def main() -> None:
    cfg = TimelineConfig()
    lib = library()
    jobs = []
    for fam in FAMILIES:
        for i in range(SESSIONS_PER_FAMILY):
            ann = _annotation_for(fam, i).model_copy(update={"seed_id": f"{fam}-{i}"})
            jobs.append(ann)
    t0 = time.perf_counter()
    plans, rejects = [], Counter()
    for ann in jobs:
        try:
            plans.append(plan_session(ann, cfg, 1, library=lib))
        except RejectError as e:
            rejects[f"plan:{e.code}"] += 1
    t_plan = time.perf_counter() - t0
    clips = [make_clips(p) for p in plans]  # TTS, not timed
    t0 = time.perf_counter()
    built = []
    for p, c in zip(plans, clips, strict=True):
        try:
            built.append(build_session(p, c, cfg, 1))
        except RejectError as e:
            rejects[f"build:{e.code}"] += 1
    t_build = time.perf_counter() - t0
    violations = sum(len(check_timing(b.timeline, cfg, b.assistant_audio)) for b in built)
    audio_h = sum(b.timeline.duration_samples for b in built) / cfg.sample_rate / 3600
    print(f"sessions planned {len(plans)}/{len(jobs)}  built {len(built)}  rejects {dict(rejects)}")
    print(f"plan  {len(plans) / t_plan:8.1f} sessions/s")
    print(
        f"build {len(built) / t_build:8.1f} sessions/s  (target >= {TARGET_BUILD_PER_S:.0f})  "
        f"ratio {len(built) / t_build / TARGET_BUILD_PER_S:.2f}; {audio_h * 3600 / t_build:.0f} s of audio per s"
    )
    print(f"timing violations {violations} (target 0)")
    for fam, stats in family_histograms(b.timeline for b in built).items():
        parts = [
            f"{k}: n={h['n']} p50={h.get('p50', '-')} max={h.get('max', '-')}"
            for k, h in stats.items()
            if h["n"]
        ]
        print(f"  {fam:14s} " + " | ".join(parts))


if __name__ == "__main__":
    main()
