"""Encode and decode one shard sample's members, and build/read deterministic WebDataset tars.

A sample (SPEC section 13) is the members ``user.flac``, ``assistant.flac``, ``json`` (the
:class:`SampleMeta`), ``chunks.json`` and ``trace.txt``, plus optional layout members
(``lws.json``, ``ct.json``, ...).

``json`` and ``chunks.json`` are written **type-stable** (:func:`stable_dump`), so that readers
that infer one column type per field from a few samples (Hugging Face ``datasets``' webdataset
builder infers from the first 5) load every sample: a field keeps its JSON value only when its
schema fixes one type that is never null or empty (``str``, ``int``, ``float``, ``bool``, a string
``Literal``, or a nested record built by the same rule); every other field (optional, a list or
dict, ``Any``) is stored as a JSON text string, e.g. ``"augmentation": "[{\"name\": ...}]"``.
:func:`meta_from_json` and :func:`chunks_from_json` turn either form back into the records.

Tars have a fixed mtime, uid/gid 0, sorted members, so the same samples always give the same bytes. No Beam here: the Beam stage writes these bytes through
FileSystems.
"""

from __future__ import annotations

import io
import json
import tarfile
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel

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


# ---------------------------------------------------------------------------------------------
# Type-stable JSON (see the module docstring; docs/DECISIONS.md "Type-stable sample JSON")

STABLE_ENCODING_KEY = "json_encoding"  # top-level key of a type-stable ``json`` member
STABLE_ENCODING = "stable-1"
_NATIVE = (str, int, float, bool)


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@cache
def _field_kinds(cls: type[BaseModel]) -> dict[str, tuple[str, type[BaseModel] | None]]:
    """Per field of ``cls``: ``("native", None)``, ``("record", sub_cls)`` or ``("text", None)``."""
    kinds: dict[str, tuple[str, type[BaseModel] | None]] = {}
    for name, info in cls.model_fields.items():
        ann = info.annotation
        origin = typing.get_origin(ann)
        if ann in _NATIVE:
            kinds[name] = ("native", None)
        elif origin is Literal and all(isinstance(a, str) for a in typing.get_args(ann)):
            kinds[name] = ("native", None)
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            kinds[name] = ("record", ann)
        else:  # optional, union, list/tuple/dict, Any: one Arrow type only as text
            kinds[name] = ("text", None)
    return kinds


def _stable(cls: type[BaseModel], dumped: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (kind, sub) in _field_kinds(cls).items():
        value = dumped[name]
        if kind == "record":
            assert sub is not None
            out[name] = _stable(sub, value)
        elif kind == "text":
            out[name] = _json_text(value)
        else:
            out[name] = value
    return out


def _unstable(cls: type[BaseModel], obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for name, (kind, sub) in _field_kinds(cls).items():
        if name not in out:
            continue
        if kind == "record" and isinstance(out[name], dict):
            assert sub is not None
            out[name] = _unstable(sub, out[name])
        elif kind == "text" and isinstance(out[name], str):
            out[name] = json.loads(out[name])
    return out


def stable_dump(record: BaseModel) -> dict[str, Any]:
    """``record`` as a JSON object in which every field has one JSON type whatever the values."""
    return _stable(type(record), record.model_dump(mode="json"))


def meta_to_json(meta: SampleMeta) -> dict[str, Any]:
    """The ``json`` member's object: :func:`stable_dump` plus the encoding marker."""
    return {**stable_dump(meta), STABLE_ENCODING_KEY: STABLE_ENCODING}


def meta_from_json(obj: dict[str, Any]) -> SampleMeta:
    """The :class:`SampleMeta` of a ``json`` member's object (type-stable, or older plain JSON),
    also of a row's ``json`` column as ``datasets`` loads it. ``ValueError`` when it is not one."""
    if not isinstance(obj, dict):
        raise ValueError(f"a JSON object is expected, not {type(obj).__name__}")
    obj = dict(obj)
    if obj.pop(STABLE_ENCODING_KEY, None) is not None:
        obj = _unstable(SampleMeta, obj)
    return SampleMeta.model_validate(obj)


def chunks_to_json(chunks: Iterable[ChunkRecord]) -> list[dict[str, Any]]:
    return [stable_dump(c) for c in chunks]


def chunks_from_json(obj: object) -> list[ChunkRecord]:
    """The chunk records of a ``chunks.json`` member's list (type-stable or plain). In a chunk
    record every text-stored field is a list, so a string there can only be the stable form."""
    if not isinstance(obj, list):
        raise ValueError(f"a list of chunk records is expected, not {type(obj).__name__}")
    return [ChunkRecord.model_validate(_unstable(ChunkRecord, c) if isinstance(c, dict) else c) for c in obj]


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
        "json": dumps_json(meta_to_json(meta)),
        "chunks.json": dumps_json(chunks_to_json(chunks)),
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
    meta = meta_from_json(json.loads(members["json"]))
    if sr_u != meta.timeline.sample_rate or sr_a != meta.timeline.sample_rate:
        raise ValueError(f"{key}: audio sample rate differs from the timeline's {meta.timeline.sample_rate}")
    chunks = chunks_from_json(json.loads(members["chunks.json"]))
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
