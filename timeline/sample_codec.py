"""Encode and decode one shard sample's members, and build/read deterministic WebDataset tars.

A sample (SPEC section 13) is the members ``user.flac``, ``assistant.flac``, ``json`` (the
:class:`SampleMeta`), ``chunks.json`` and ``trace.txt``, plus optional layout members
(``lws.json``, ``ct.json``, ...). Tars have a fixed mtime, uid/gid 0, sorted members, so the same
samples always give the same bytes. No Beam here: the Beam stage writes these bytes through
FileSystems.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from duplexloom.schemas.chunk import ChunkRecord
from duplexloom.schemas.sample import SampleMeta
from duplexloom.schemas.units import chunk_samples

FIXED_MTIME = 1_700_000_000  # 2023-11-14; any constant works, it only has to be fixed
REQUIRED_MEMBERS = ("user.flac", "assistant.flac", "json", "chunks.json", "trace.txt")


@dataclass
class DecodedSample:
    key: str
    meta: SampleMeta
    user_audio: np.ndarray  # float32 mono at meta.timeline.sample_rate
    assistant_audio: np.ndarray
    chunks: list[ChunkRecord]
    trace: str
    extra: dict[str, bytes] = field(default_factory=dict)


def encode_flac(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit FLAC of a float32 mono signal (clipped to [-1, 1])."""
    buf = io.BytesIO()
    sf.write(
        buf,
        np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0),
        sample_rate,
        format="FLAC",
        subtype="PCM_16",
    )
    return buf.getvalue()


def decode_flac(data: bytes) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return audio, sr


def _pad_to(key: str, track: str, audio: np.ndarray, n_samples: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) > n_samples:
        raise ValueError(
            f"{key}: {track} track has {len(audio)} samples, more than its chunks hold ({n_samples})"
        )
    if len(audio) == n_samples:
        return audio
    out = np.zeros(n_samples, dtype=np.float32)  # np.pad is several times slower for 1-D
    out[: len(audio)] = audio
    return out


def dumps_json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def encode_sample(
    meta: SampleMeta,
    user_audio: np.ndarray,
    assistant_audio: np.ndarray,
    chunks: list[ChunkRecord],
    trace: str,
    extra: dict[str, bytes] | None = None,
    encode_audio: Callable[[np.ndarray, int], bytes] = encode_flac,
) -> dict[str, bytes]:
    """Member suffix -> bytes for one sample. ``encode_audio`` must give :func:`encode_flac`'s
    bytes (a caching wrapper of it, for instance).

    Both tracks are padded with silence to ``len(chunks)`` whole chunks: the serializer may add
    chunks past the session end while the action queue drains (docs/DECISIONS.md), and every chunk
    must have its audio. A track longer than the chunks is a bug and raises.
    """
    sr = meta.timeline.sample_rate
    want = len(chunks) * chunk_samples(sr, meta.chunk_ms)
    user_audio, assistant_audio = (
        _pad_to(meta.key, name, a, want) for name, a in (("user", user_audio), ("assistant", assistant_audio))
    )
    members = {
        "user.flac": encode_audio(user_audio, sr),
        "assistant.flac": encode_audio(assistant_audio, sr),
        "json": dumps_json(meta.model_dump(mode="json")),
        "chunks.json": dumps_json([c.model_dump(mode="json") for c in chunks]),
        "trace.txt": trace.encode("utf-8"),
    }
    for name, data in (extra or {}).items():
        if name in members:
            raise ValueError(f"{meta.key}: extra member {name!r} would overwrite a required member")
        members[name] = data
    return members


def decode_sample(key: str, members: dict[str, bytes]) -> DecodedSample:
    """Inverse of :func:`encode_sample`. Raises ``KeyError`` naming the first missing member."""
    for name in REQUIRED_MEMBERS:
        if name not in members:
            raise KeyError(f"{key}: missing member {key}.{name}")
    user, sr_u = decode_flac(members["user.flac"])
    assistant, sr_a = decode_flac(members["assistant.flac"])
    meta = SampleMeta.model_validate_json(members["json"])
    if sr_u != meta.timeline.sample_rate or sr_a != meta.timeline.sample_rate:
        raise ValueError(f"{key}: audio sample rate differs from the timeline's {meta.timeline.sample_rate}")
    chunks = [ChunkRecord.model_validate(c) for c in json.loads(members["chunks.json"])]
    extra = {k: v for k, v in members.items() if k not in REQUIRED_MEMBERS}
    return DecodedSample(key, meta, user, assistant, chunks, members["trace.txt"].decode("utf-8"), extra)


def _check_key(key: str) -> None:
    if "." in key or "/" in key:
        raise ValueError(
            f"sample key {key!r} must not contain '.' or '/' (WebDataset splits on the first dot)"
        )


def shard_order(key: str) -> str:
    """Sort key of a sample in a shard: members are sorted by full name, and since a key holds no
    ``.``, sorting samples by ``key + "."`` keeps each sample's members together in that order."""
    return key + "."


BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: a tar ends on a whole record, as tarfile writes it


def sample_tar_blocks(key: str, members: dict[str, bytes]) -> bytes:
    """One sample's part of a shard tar: each member's USTAR header and data padded to 512 bytes,
    members sorted, fixed mtime, uid/gid 0. Tar headers hold no offsets, so a shard is its samples'
    blocks in :func:`shard_order` followed by :func:`tar_end`: a sample can be encoded once (and
    spooled) and copied into its shard as bytes. Equal to what ``tarfile`` writes (a test checks)."""
    _check_key(key)
    parts = []
    for suffix in sorted(members):
        data = members[suffix]
        info = tarfile.TarInfo(f"{key}.{suffix}")
        info.size = len(data)
        info.mtime = FIXED_MTIME
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        parts += (
            info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"),
            data,
            bytes(-len(data) % BLOCK),
        )
    return b"".join(parts)


def tar_end(n_bytes: int) -> bytes:
    """The end of a tar whose members took ``n_bytes``: two zero blocks, then zeros to a whole record."""
    return bytes(2 * BLOCK + (-(n_bytes + 2 * BLOCK) % RECORD))


def write_shard_blocks(fileobj, samples: Iterable[tuple[str, bytes]]) -> int:
    """Write a shard tar from ``(key, sample_tar_blocks(key, ...))`` pairs in :func:`shard_order` to
    ``fileobj`` (write-only, no seek); each pair may be produced lazily, so a shard of any size is
    written with one sample in memory. Returns the tar's size in bytes."""
    n = 0
    last = None
    for key, blocks in samples:
        _check_key(key)
        if last is not None and shard_order(key) <= shard_order(last):
            raise ValueError(f"samples out of shard order: {key!r} after {last!r}")
        last = key
        # A cheap check that the blocks are this sample's: the first header's name field.
        if len(blocks) % BLOCK or not blocks.startswith(f"{key}.".encode()):
            raise ValueError(f"sample {key!r}: not its tar blocks ({len(blocks)} bytes)")
        fileobj.write(blocks)
        n += len(blocks)
    end = tar_end(n)
    fileobj.write(end)
    return n + len(end)


def write_shard_tar(fileobj, samples: Iterable[tuple[str, dict[str, bytes]]]) -> int:
    """Stream a WebDataset tar of ``(key, members)`` in :func:`shard_order` to ``fileobj``, one
    sample at a time (see :func:`write_shard_blocks`). Members are named ``<key>.<suffix>``,
    sorted, with a fixed mtime; the bytes equal :func:`shard_tar_bytes`'s. Returns the size."""
    return write_shard_blocks(fileobj, ((key, sample_tar_blocks(key, members)) for key, members in samples))


def shard_tar_bytes(samples: Iterable[tuple[str, dict[str, bytes]]]) -> bytes:
    """A WebDataset tar of ``(key, members)``: members named ``<key>.<suffix>``, sorted, fixed mtime."""
    buf = io.BytesIO()
    write_shard_tar(buf, sorted(samples, key=lambda s: shard_order(s[0])))
    return buf.getvalue()


def iter_shard(fileobj: io.BufferedIOBase) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, members)`` from a WebDataset tar stream, grouping consecutive members by key."""
    key: str | None = None
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            k, _, suffix = info.name.partition(".")
            if key is not None and k != key:
                yield key, members
                members = {}
            key = k
            extracted = tar.extractfile(info)
            assert extracted is not None
            members[suffix] = extracted.read()
    if key is not None:
        yield key, members
