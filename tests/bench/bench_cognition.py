"""Cognition in the data (issue 20): a think-family run over the bundled seeds that name no family,
all three layouts, and the counts behind the done-criteria.

``make bench BENCH=cognition`` prints: samples, think actions made and how many reach the TA4
action channel, LWS listening units in seconds the user speaks and how many carry a note, units
per phase, ``<|turn_eos|>`` markers and how many sit inside a spoken segment, CT replies and how
many have a non-empty ``<BOC>…<EOC>`` chain right before them, and the summary's cognition counts.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.run import DEFAULT_SEEDS, run
from duplexloom.timeline.sample_codec import decode_sample, iter_shard


def counts(out: Path) -> Counter:
    c: Counter = Counter()
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_shard(f):
                s = decode_sample(key, members)
                tl = s.meta.timeline
                c["samples"] += 1
                thinks = {a.id for a in tl.actions if a.name == "think"}
                on_channel = {p.action_id for ch in s.chunks for p in ch.pieces}
                c["think_actions"] += len(thinks)
                c["think_actions_on_ta4"] += len(thinks & on_channel)
                sr = tl.sample_rate
                user_units = {
                    x
                    for u in tl.utterances
                    if u.speaker == "user"
                    for w in u.words
                    for x in range(w.start_samples // sr, (w.end_samples - 1) // sr + 1)
                }
                for u in json.loads(s.extra["lws.json"]):
                    c[f"lws_units_{u['phase'] or 'speak'}"] += 1
                    if u["kind"] == "listen" and u["unit"] in user_units:
                        c["lws_listen_units_user_speaking"] += 1
                        c["lws_listen_units_user_speaking_with_note"] += bool(u["listen_text"])
                    if "<|turn_eos|>" in u["text"]:
                        c["lws_turn_eos"] += 1
                        c["lws_turn_eos_in_spoken_segment"] += bool(
                            u["spoken"] and f"{u['spoken']}<|turn_eos|><|eos|>" in u["text"]
                        )
                frames = json.loads(s.extra["ct.json"])
                for i, f in enumerate(frames):
                    if f == "<BOS>":
                        c["ct_replies"] += 1
                        c["ct_replies_after_nonempty_chain"] += (
                            frames[i - 1] == "<EOC>" and frames[i - 2] != "<BOC>"
                        )
    return c


def main() -> None:
    lines = [line for line in open(DEFAULT_SEEDS, encoding="utf-8") if "family" not in json.loads(line)]
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds.jsonl"
        seeds.write_text("".join(lines), encoding="utf-8")
        out = Path(tmp) / "out"
        cfg = load_config(
            None,
            [
                f"output.dir={out}",
                f"input.seeds=['{seeds}']",
                "timeline.family_mix={think: 1.0}",
                "serializer.layouts=[ta4,lws,ct]",
                "progress=false",
            ],
        )
        summary = run(cfg, [])[0]
        c = counts(out)
    print(f"seeds: {len(lines)}  accounting: {summary['accounting']}")
    for k in sorted(c):
        print(f"{k:48s} {c[k]}")
    print("summary.cognition:", json.dumps(summary["cognition"], ensure_ascii=False))
    print(
        "targets: think_actions_on_ta4 == think_actions; lws_turn_eos_in_spoken_segment == lws_turn_eos; "
        "ct_replies_after_nonempty_chain == ct_replies; notes in >= 90 % of user-speaking listening units"
    )
