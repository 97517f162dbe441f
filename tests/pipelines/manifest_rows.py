"""A manifest row for tests that need one but not a whole sample: every column set, overridable."""

from __future__ import annotations

from duplexloom.schemas.manifest import ManifestRow


def manifest_row(key: str, shard: int = 0, **kw) -> ManifestRow:
    row = dict(
        key=key,
        shard=f"shards/{shard:06d}.tar",
        seed_id=key,
        family="dialogue",
        family_substitution=None,
        lang="en",
        duration_s=2.0,
        user_speech_s=0.5,
        assistant_speech_s=1.0,
        n_chunks=13,
        n_utterances=2,
        n_actions=1,
        n_tool_calls=0,
        max_action_tokens=4,
        user_speaker="u",
        assistant_speaker="a",
        tokenizer="builtin",
        layouts="ta4",
        action_channel="",
        prompt_hashes="{}",
        bytes=100,
        cognition="omitted:not_annotated",
        chains="carried",
    )
    row.update(kw)
    return ManifestRow(**row)
