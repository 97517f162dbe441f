"""The spool (large values through files, references through the shuffles) and the streaming
shard writer that reads it: round trips, byte equality with the in-memory writer, clean-up and
the retried-bundle path of ``WriteShard``."""

from __future__ import annotations

import io as pyio
import json
import tarfile

import numpy as np
import pytest

from duplexloom.pipelines import spool
from duplexloom.pipelines.align import Aligned
from duplexloom.pipelines.seeds import ShardPlan
from duplexloom.pipelines.shards import EncodedSample, WriteShard, shard_bytes, shard_path, state_path
from duplexloom.pipelines.transport import Sealed
from duplexloom.schemas import Reject
from duplexloom.schemas.clip import AlignedClip, AudioRef
from duplexloom.timeline.sample_codec import (
    FIXED_MTIME,
    iter_shard,
    sample_tar_blocks,
    shard_tar_bytes,
    tar_end,
    write_shard_blocks,
    write_shard_tar,
)
from tests.pipelines.manifest_rows import manifest_row


def _members(key: str, n: int = 3) -> dict[str, bytes]:
    rng = np.random.default_rng(len(key))
    return {
        "json": json.dumps({"key": key}).encode(),
        "user.flac": rng.bytes(700 + 37 * n),
        "trace.txt": f"trace {key}".encode(),
    }


def _reference_tar(samples) -> bytes:
    """Every member sorted by its full name, written by tarfile in seekable mode (the layout the
    shards had before the writer streamed)."""
    entries = sorted((f"{k}.{s}", d) for k, m in samples for s, d in m.items())
    buf = pyio.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, pyio.BytesIO(data))
    return buf.getvalue()


def test_streamed_shard_equals_the_sorted_reference_even_with_prefix_keys():
    # "a-b" < "a" as keys' members ("a-b.json" < "a.json"): the order is by full member name.
    keys = ["a", "a-b", "a_c", "ab", "b", "a0"]
    samples = [(k, _members(k, i)) for i, k in enumerate(keys)]
    assert shard_tar_bytes(samples) == _reference_tar(samples)
    assert shard_tar_bytes(list(reversed(samples))) == _reference_tar(samples)


@pytest.mark.parametrize(
    "sizes", [(0, 1, 511), (512, 513, 9000), (10240 - 3 * 512 - 1024,), (20000, 3, 10239)]
)
def test_sample_blocks_concatenate_to_the_reference_tar(sizes):
    """A shard is its samples' blocks plus the end: equal to tarfile's bytes for members that are
    empty, block-sized, or end near a record boundary (where tarfile's record padding changes)."""
    rng = np.random.default_rng(sum(sizes))
    samples = [(f"k{i}", {"json": rng.bytes(n), "txt": rng.bytes(n // 3)}) for i, n in enumerate(sizes)]
    buf = pyio.BytesIO()
    n = write_shard_blocks(buf, [(k, sample_tar_blocks(k, m)) for k, m in samples])
    assert buf.getvalue() == _reference_tar(samples) and n == len(buf.getvalue())
    assert len(buf.getvalue()) % 10240 == 0
    with pytest.raises(ValueError, match="not its tar blocks"):
        write_shard_blocks(pyio.BytesIO(), [("k1", sample_tar_blocks("k0", samples[0][1]))])


def test_streaming_writer_refuses_samples_out_of_order():
    with pytest.raises(ValueError, match="out of shard order"):
        write_shard_tar(pyio.BytesIO(), [("b", _members("b")), ("a", _members("a"))])
    with pytest.raises(ValueError, match="must not contain"):
        write_shard_tar(pyio.BytesIO(), [("a.b", _members("a"))])


def test_audio_and_members_round_trip(tmp_path):
    out = str(tmp_path)
    audio = np.random.default_rng(0).standard_normal(16_000).astype(np.float32)
    p = spool.clip_path(out, "seed/1", "u 2", 8)
    spool.put_audio(p, audio)
    assert p.startswith(str(tmp_path / "_work")) and np.array_equal(spool.get_audio(p), audio)
    m = _members("k1")
    sp = spool.sample_path(out, "k1", 8)
    spool.put_members(sp, "k1", m)
    blocks = spool.get_blocks(sp)
    assert blocks == sample_tar_blocks("k1", m)
    assert list(iter_shard(pyio.BytesIO(blocks + tar_end(len(blocks))))) == [("k1", m)]
    spool.delete_tree(spool.work_dir(out))
    assert not (tmp_path / "_work").exists()
    spool.delete_tree(spool.work_dir(out))  # a missing folder is fine


def _clip(**kw) -> AlignedClip:
    return AlignedClip(session_id="sess", utterance_id="u1", lang="en", **kw)


def test_spool_clip_writes_the_samples_and_the_clip_says_where_they_are(tmp_path):
    audio = np.linspace(-0.5, 0.5, 321, dtype=np.float32)
    sid, sealed = spool.SpoolClip(str(tmp_path), 4)(("sess", Aligned(_clip(), audio, 16_000)))
    clip = sealed.open()
    assert sid == "sess" and isinstance(clip, AlignedClip)
    assert clip.audio == AudioRef(
        path=spool.clip_path(str(tmp_path), "sess", "u1", 4), sample_rate=16_000, n_samples=321
    )
    assert np.array_equal(spool.read_clip_audio(clip.audio), audio)
    rejected = _clip(reject=Reject(record_id="sess", stage="tts", code="tts_failed"))
    assert spool.SpoolClip(str(tmp_path), 4)(("sess", Aligned(rejected))) == ("sess", Sealed.of(rejected))


def test_a_reference_into_the_tts_cache_is_not_spooled_and_loads_from_the_cache(tmp_path):
    from duplexloom.tts_adapters import SynthesisCache, SynthResult

    audio = np.linspace(-0.5, 0.5, 16_000, dtype=np.float32)
    entry = SynthesisCache(tmp_path / "tts").put("k" * 64, SynthResult(audio, 16_000))
    ref = entry.stored
    assert ref == AudioRef(path=ref.path, sample_rate=16_000, n_samples=16_000)
    clip = _clip(audio=ref)
    assert spool.SpoolClip(str(tmp_path), 4)(("sess", Aligned(clip))) == ("sess", Sealed.of(clip))
    assert not (tmp_path / "_work").exists()
    back = spool.read_clip_audio(ref)
    assert np.array_equal(back, entry.audio) and np.allclose(back, audio, atol=2**-22)
    with pytest.raises(RuntimeError, match="expected 15999"):
        spool.read_clip_audio(ref.model_copy(update={"n_samples": 15_999}))


def _encoded(out: str, key: str, shard: int) -> EncodedSample:
    return spool.SpoolSample(out, 1)(EncodedSample(shard, key, _members(key), manifest_row(key, shard)))


def test_write_shard_streams_from_the_spool_then_removes_it_and_a_retry_uses_the_state(tmp_path):
    out = str(tmp_path)
    samples = [_encoded(out, k, 0) for k in ("s2", "s1", "s3")]
    assert all(s.members == {} and s.ref for s in samples)
    fn = WriteShard(out, "cfg", 1, progress=False)
    fn.setup()
    plan = ShardPlan(0, "inputs", 3)
    element = (0, {"plans": [plan], "samples": [Sealed.of(s) for s in samples], "rejects": []})
    [res] = list(fn.process(element))
    data = (tmp_path / "shards" / "000000.tar").read_bytes()
    expected = shard_bytes([EncodedSample(0, k, _members(k), {}) for k in ("s1", "s2", "s3")])
    assert data == expected and res.tar_bytes == len(data) and not res.skipped
    assert [k for k, _ in iter_shard(pyio.BytesIO(data))] == ["s1", "s2", "s3"]
    assert not (tmp_path / "_work" / "000000").exists()
    # A retried bundle: the spool is gone, the state the first attempt wrote answers.
    [again] = list(fn.process(element))
    assert again.rows == res.rows and again.tar_bytes == res.tar_bytes and not again.skipped
    # Without a matching state the missing spool is an error, not a silent empty shard.
    (tmp_path / "state" / "000000.json").unlink()
    with pytest.raises(OSError):
        list(fn.process(element))
    assert shard_path(out, 0).endswith("000000.tar") and state_path(out, 0).endswith("000000.json")


def test_open_atomic_leaves_nothing_when_the_block_raises(tmp_path):
    from duplexloom import storage

    target = str(tmp_path / "x.tar")
    with pytest.raises(RuntimeError, match="half"):
        with storage.open_atomic(target) as f:
            f.write(b"partial")
            raise RuntimeError("half written")
    assert list(tmp_path.iterdir()) == []
    with storage.open_atomic(target) as f:
        f.write(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["x.tar"] and (tmp_path / "x.tar").read_bytes() == b"whole"


def test_packed_spans_round_trip_and_are_validated_when_unpacked():
    from duplexloom.pipelines.transport import pack_spans, unpack_spans
    from duplexloom.schemas import TimedSpan

    spans = (
        TimedSpan(text="hi", start_samples=0, end_samples=5, confidence=0.5),
        TimedSpan(text="x", start_samples=5, end_samples=9),
    )
    assert unpack_spans(pack_spans(spans)) == spans
    with pytest.raises(ValueError, match="before start"):
        unpack_spans((("bad", 9, 5, None),))  # e.g. a corrupted alignment cache entry
