"""Cognition in the data (issue 20): a think-family run over the bundled seeds that name no family,
all three layouts, and the counts behind the done-criteria.

``make bench BENCH=cognition`` prints: samples, think actions made and how many reach the TA4
action channel, LWS listening units in seconds the user speaks and how many carry a note, units
per phase, ``<|turn_eos|>`` markers and how many sit inside a spoken segment, CT replies and how
many have a non-empty ``<BOC>…<EOC>`` chain right before them, and the summary's cognition counts.
Also, per chain node written in ``ct.json``, whether its first frame comes before the end of the
segment it was built from (the SPEC 16 block sits in the last M+2 silence slots before the reply,
so a node of a turn's last clause is written before that clause has ended): the count and the
median lead in seconds. The nodes are recomputed from each sample's seed with the offline annotator.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from duplexloom.annotators import AnnotatorConfig, chains, cognition
from duplexloom.pipelines.config import load_config
from duplexloom.pipelines.run import DEFAULT_SEEDS, run
from duplexloom.schemas.annotation import AnnotatedTurn
from duplexloom.timeline.augment import units
from duplexloom.timeline.cognition import (
    NODE_SEP,
    heard_end,
    render_node,
    turn_unit_ends,
    units_through_segment,
)
from duplexloom.timeline.sample_codec import decode_sample, iter_shard
from duplexloom.timeline.tokenizer import load_tokenizer


def node_leads(s, frames: list[str], tok) -> list[float]:
    """Seconds by which each chain node written in ``frames`` starts before its segment has ended."""
    tl, seed = s.meta.timeline, s.meta.provenance["seed"]
    lang = seed["lang"]
    turns = [AnnotatedTurn(role=t["role"], text=t["text"]) for t in seed["turns"]]
    turns, _ = cognition.offline_think(turns, lang, AnnotatorConfig())
    by_turn: dict[int, list] = {}
    for n in chains.offline_chain(turns, lang):
        by_turn.setdefault(n.turn_index, []).append(n)
    frame = tl.sample_rate * 80 // 1000
    leads = []
    bocs = [i for i, f in enumerate(frames) if f == "<BOC>"]
    for boc, ti in zip(bocs, sorted(by_turn), strict=False):
        nodes, text = by_turn[ti], turns[ti].text
        ends = turn_unit_ends(tl, ti)
        for j, node in enumerate(nodes):
            start = boc + 1 + (len(tok.pieces(NODE_SEP.join(render_node(n) for n in nodes[:j]))) if j else 0)
            if frames[start] == "<EOC>":
                break  # the rest was truncated
            ready = heard_end(
                ends, units_through_segment(text, lang, node.segment_index), len(units(text, lang))
            )
            leads.append((ready - start * frame) / tl.sample_rate)
    return leads


def counts(out: Path) -> Counter:
    c: Counter = Counter()
    tok = load_tokenizer(None)
    leads: list[float] = []
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
                leads.extend(node_leads(s, frames, tok))
                for i, f in enumerate(frames):
                    if f == "<BOS>":
                        c["ct_replies"] += 1
                        c["ct_replies_after_nonempty_chain"] += (
                            frames[i - 1] == "<EOC>" and frames[i - 2] != "<BOC>"
                        )
    early = sorted(x for x in leads if x > 0)
    c["ct_nodes_written"] = len(leads)
    c["ct_nodes_starting_before_their_segment_ends"] = len(early)
    c["ct_median_lead_ms_of_those"] = round(1000 * early[len(early) // 2]) if early else 0
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
