"""``python -m duplexloom.pipelines.content_stats OUT_DIR``: what a run's samples say (issue 16).

Reads only each sample's ``json`` member (no audio) from ``OUT_DIR/shards/*.tar`` and prints, as
JSON: the family shares beside ``timeline.family_mix`` (from ``OUT_DIR/summary.json``), tool names
outside the catalog of SPEC section 9, tool calls without planning text, the share of distinct
spoken replies after tool calls, interpret sessions without assistant speech, think sessions
without ``think`` actions, and the family substitutions the annotators recorded.
No reject codes (a reader of finished output).
"""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from duplexloom import storage
from duplexloom.prompts import load_catalog
from duplexloom.schemas.sample import SampleMeta
from duplexloom.timeline.sample_codec import iter_shard, meta_from_json


def sample_metas(out_dir: str) -> Iterator[SampleMeta]:
    for path in sorted(storage.match(storage.join(out_dir, "shards", "*.tar"))):
        for _, members in iter_shard(io.BytesIO(storage.read_bytes(path))):
            yield meta_from_json(json.loads(members["json"]))


def tool_reply(meta: SampleMeta) -> str | None:
    """The assistant's first words after the session's last tool call (the reply that fits it)."""
    tl = meta.timeline
    calls = [a.offset_samples for a in tl.actions if a.is_tool_call]
    if not calls:
        return None
    after = [u for u in tl.utterances if u.speaker == "assistant" and u.audio_start_samples >= max(calls)]
    return min(after, key=lambda u: u.audio_start_samples).text if after else None


def content_stats(metas: Iterable[SampleMeta], family_mix: dict[str, float]) -> dict[str, Any]:
    catalog = set(load_catalog())
    metas = list(metas)
    n = len(metas)
    families = Counter(m.family for m in metas)
    shares = {
        f: round(100 * families.get(f, 0) / max(n, 1), 1) for f in sorted(set(family_mix) | set(families))
    }
    target = {f: round(100 * w / max(sum(family_mix.values()), 1e-9), 1) for f, w in family_mix.items()}
    calls = [a for m in metas for a in m.timeline.actions if a.is_tool_call]
    replies = [r for m in metas if m.family == "toolcall" and (r := tool_reply(m)) is not None]
    subs = Counter(
        s for m in metas if (s := m.provenance.get("annotation", {}).get("family_substitution")) is not None
    )
    return {
        "samples": n,
        "family_share_pct": shares,
        "family_mix_pct": target,
        "max_share_gap_points": round(
            max((abs(shares.get(f, 0.0) - target.get(f, 0.0)) for f in shares), default=0.0), 1
        ),
        "families_missing": sorted(f for f, w in family_mix.items() if w > 0 and not families.get(f)),
        "tool_calls": len(calls),
        "tool_names_outside_spec9": sorted({a.name for a in calls} - catalog),
        "tool_calls_without_planning": sum(1 for a in calls if not (a.planning or "").strip()),
        "toolcall_replies": len(replies),
        "toolcall_replies_distinct_pct": round(100 * len(set(replies)) / max(len(replies), 1), 1),
        "interpret_without_assistant_speech": sum(
            1
            for m in metas
            if m.family == "interpret" and not any(u.speaker == "assistant" for u in m.timeline.utterances)
        ),
        "think_without_think_actions": sum(
            1 for m in metas if m.family == "think" and not any(a.name == "think" for a in m.timeline.actions)
        ),
        "family_substitutions": dict(sorted(subs.items())),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m duplexloom.pipelines.content_stats OUT_DIR", file=sys.stderr)
        return 2
    out_dir = args[0]
    summary = json.loads(storage.read_bytes(storage.join(out_dir, "summary.json")))
    mix = summary["config"]["timeline"].get("family_mix") or {}
    print(json.dumps(content_stats(sample_metas(out_dir), mix), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
