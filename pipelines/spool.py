"""The run's spool: large values travel through files, only small references through Beam's shuffles.

Why: a runner materializes what goes into a GroupByKey. When the two shuffles of the job
(``GroupSession``: every utterance's audio; ``GroupShard``: every sample's tar members) carried the
bytes themselves, a worker's memory grew with the number of seeds (the DirectRunner holds a
whole shuffle in memory). With the spool, each shuffle carries a path, and the memory of a run is
flat in the number of seeds: one session's clips and one sample's members at a time.

Layout, under ``<output.dir>/_work/`` (through FileSystems, so ``gs://`` and ``s3://`` work alike):
* ``<shard:06d>/<session key>.clip.<utterance key>.npy`` — an aligned utterance's float32 audio
  (written by the ``SpoolClips`` step after ``Align``, which sets the clip's
  :class:`~duplexloom.schemas.clip.AudioRef` to it; read by ``Build``, :func:`read_clip_audio`);
* ``<shard:06d>/<session key>.blocks`` — a finished sample's tar blocks (its members'
  headers and data, ``sample_codec.sample_tar_blocks``; written by ``SpoolSamples`` after
  ``Serialize``, copied into the shard as they are by ``WriteShards``).
An utterance whose audio is in the TTS cache is not spooled: its ``AudioRef`` points there.
Every path is a pure function of (shard, seed id, utterance id), so a retried bundle overwrites the
same files with the same bytes. ``WriteShards`` deletes a shard's folder once the shard and its
state are written (rejected sessions' clips included); ``WriteOutputs`` deletes ``_work/`` at the
end. A crashed run leaves ``_work/`` behind; the next run overwrites or removes it.
No reject codes.
"""

from __future__ import annotations

import dataclasses
import io as _io
import logging

import numpy as np
from apache_beam.io.filesystem import BeamIOError

from duplexloom import storage as io
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.transport import seal
from duplexloom.schemas.clip import AudioRef
from duplexloom.timeline.sample_codec import sample_tar_blocks
from duplexloom.tts_adapters.cache import read_audio

WORK_DIR = "_work"
log = logging.getLogger("duplexloom.pipelines")


def work_dir(out_dir: str) -> str:
    return io.join(out_dir, WORK_DIR)


def shard_dir(out_dir: str, shard: int) -> str:
    return io.join(work_dir(out_dir), f"{shard:06d}")


def _session_prefix(out_dir: str, seed_id: str, num_shards: int) -> str:
    # Flat files in the shard's folder, no folder per session: creating and removing one per seed
    # cost ~0.3 ms, a few percent of a prompt-only rerun. Keys hold no ".", so names cannot clash.
    key = sample_key(seed_id)
    return io.join(shard_dir(out_dir, shard_of(key, num_shards)), key)


def clip_path(out_dir: str, seed_id: str, utterance_id: str, num_shards: int) -> str:
    return f"{_session_prefix(out_dir, seed_id, num_shards)}.clip.{sample_key(utterance_id)}.npy"


def sample_path(out_dir: str, seed_id: str, num_shards: int) -> str:
    return f"{_session_prefix(out_dir, seed_id, num_shards)}.blocks"


def put_audio(path: str, audio: np.ndarray) -> None:
    buf = _io.BytesIO()
    np.save(buf, np.ascontiguousarray(audio, dtype=np.float32), allow_pickle=False)
    io.write_atomic(path, buf.getvalue())


def get_audio(path: str) -> np.ndarray:
    return np.load(_io.BytesIO(io.read_bytes(path)), allow_pickle=False)


def put_members(path: str, key: str, members: dict[str, bytes]) -> None:
    """Spool a sample as its tar blocks (``sample_codec.sample_tar_blocks``): the shard writer
    copies them into the shard as they are."""
    io.write_atomic(path, sample_tar_blocks(key, members))


def get_blocks(path: str) -> bytes:
    return io.read_bytes(path)


def delete_tree(path: str) -> None:
    """Remove a spool folder and everything below it; a missing folder is fine."""
    if "://" in path:
        # Object stores have no folders (``exists`` is false for a prefix): a trailing slash
        # deletes every object under the prefix, and an empty prefix is an error to ignore.
        try:
            io.delete([path.rstrip("/") + "/"])
        except BeamIOError as e:
            log.warning("spool: could not delete %s: %s", path, e)
    elif io.exists(path):
        io.delete([path.rstrip("/")])  # the local filesystem removes the directory tree


class SpoolClip:
    """``(session id, Aligned)`` -> ``(session id, Sealed(AlignedClip))``: samples still in memory
    are written to the spool and the clip's ``audio`` set to them; every clip that is not a reject
    then says where its samples are. Sealed for the session shuffle (every record is sealed)."""

    def __init__(self, out_dir: str, num_shards: int) -> None:
        self.out_dir = out_dir
        self.num_shards = num_shards

    def __call__(self, kv):
        session_id, a = kv
        clip = a.clip
        if a.samples is not None:  # not a reject, nor a reference into the TTS cache already
            path = clip_path(self.out_dir, session_id, clip.utterance_id, self.num_shards)
            put_audio(path, a.samples)
            ref = AudioRef(path=path, sample_rate=a.sample_rate, n_samples=int(a.samples.shape[0]))
            clip = clip.model_copy(update={"audio": ref})
        return session_id, seal(clip)  # opened by Build, after the session shuffle


def read_clip_audio(ref: AudioRef) -> np.ndarray:
    """The float32 samples ``ref`` points to: a spooled ``.npy`` or, in the TTS stage's lazy mode,
    the utterance's entry in the TTS cache (a WAV or FLAC file at the session rate)."""
    if ref.path.endswith(".npy"):
        audio = get_audio(ref.path)
    else:
        audio, _ = read_audio(ref.path, ref.sample_rate)
    if audio.shape[0] != ref.n_samples:
        raise RuntimeError(f"spooled clip {ref.path}: {audio.shape[0]} samples, expected {ref.n_samples}")
    return audio


class SpoolSample:
    """``EncodedSample`` with members -> the same record with ``members={}`` and ``ref`` set."""

    def __init__(self, out_dir: str, num_shards: int) -> None:
        self.out_dir = out_dir
        self.num_shards = num_shards

    def __call__(self, e):
        path = sample_path(self.out_dir, e.row.seed_id, self.num_shards)
        put_members(path, e.key, e.members)
        return dataclasses.replace(e, members={}, ref=path)
