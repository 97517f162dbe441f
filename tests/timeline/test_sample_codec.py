import io

import numpy as np
import pytest

from duplexloom.schemas import ChunkRecord, SampleMeta, Speaker, Timeline, TokenizerInfo
from duplexloom.timeline.sample_codec import decode_sample, encode_sample, iter_shard, shard_tar_bytes

SR, CHUNK = 16_000, 2_560


def _meta(key: str, duration_samples: int) -> SampleMeta:
    spk = {role: Speaker(id=role, role=role, display_name=role) for role in ("user", "assistant")}
    return SampleMeta(
        key=key,
        family="dialogue",
        lang="en",
        system_prompt="",
        speakers=spk,
        tokenizer=TokenizerInfo(name="builtin", kind="builtin"),
        run_seed=0,
        seed_id=key,
        timeline=Timeline(session_id=key, duration_samples=duration_samples),
    )


def _chunks(n: int) -> list[ChunkRecord]:
    return [ChunkRecord(chunk=i, anchor="<vad_silence>") for i in range(n)]


def test_tracks_are_padded_to_every_chunk_including_drain_chunks():
    # 3 session chunks of audio, but the FIFO drained into 2 extra chunks: audio must cover all 5.
    rng = np.random.default_rng(0)
    user = (rng.standard_normal(3 * CHUNK) * 0.1).astype(np.float32)
    members = encode_sample(_meta("k1", 3 * CHUNK), user, user * 0.5, _chunks(5), "trace")
    back = decode_sample("k1", members)
    assert len(back.user_audio) == len(back.assistant_audio) == 5 * CHUNK
    assert np.allclose(back.user_audio[: 3 * CHUNK], user, atol=1e-4)
    assert not back.user_audio[3 * CHUNK :].any()


def test_audio_longer_than_the_chunks_is_a_bug():
    with pytest.raises(ValueError, match="more than its chunks hold"):
        encode_sample(_meta("k2", CHUNK), np.zeros(CHUNK + 1), np.zeros(CHUNK), _chunks(1), "")


def test_tar_is_deterministic_sorted_and_round_trips():
    samples = [
        (k, encode_sample(_meta(k, CHUNK), np.zeros(CHUNK), np.zeros(CHUNK), _chunks(1), "t"))
        for k in ("b", "a")
    ]
    tar1, tar2 = shard_tar_bytes(samples), shard_tar_bytes(list(reversed(samples)))
    assert tar1 == tar2
    keys = [k for k, _ in iter_shard(io.BytesIO(tar1))]
    assert keys == ["a", "b"]
    with pytest.raises(KeyError, match="missing member"):
        decode_sample("a", {"json": b"{}"})
