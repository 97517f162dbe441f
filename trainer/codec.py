"""Assistant audio -> 4 discrete tokens per chunk (one per 40 ms), behind a small codec registry.

* ``kmeans`` (built in): k-means over standardized log-mel frames, fitted on the training shards at
  the start of a run (seeded) and saved inside every checkpoint, so evaluation and resume use the
  exact same codebook.
* ``external``: codes computed by a real neural codec and stored in the shards as an extra member
  (default ``assistant.codes.npy``, int array ``(n_chunks, 4)`` or ``(n_chunks * 4,)``); the trainer
  only reads them. Write such members with ``sample_codec.encode_sample(..., extra=...)``.

Input: a decoded sample (or its assistant log-mel frames). Output: int64 codes ``(n_chunks, 4)`` in
``[0, codebook_size)``. Reject code: ``missing_codes`` (external codec, member absent or wrong shape).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.rng import parts_seed
from duplexloom.timeline.sample_codec import DecodedSample

from .config import CodecConfig, FrontendConfig
from .features import FRAMES_PER_CHUNK, log_mel


class AudioCodec(Protocol):
    kind: str
    codebook_size: int

    def encode(self, sample: DecodedSample, frames: np.ndarray | None = None) -> np.ndarray:
        """Codes ``(n_chunks, 4)`` of the sample's assistant track."""
        ...

    def state_dict(self) -> dict[str, Any]: ...


CODECS: dict[str, Callable[..., AudioCodec]] = {}


def register_codec(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        CODECS[name] = cls
        return cls

    return deco


def seed_for(*parts: object) -> int:
    """Stable 63-bit seed from parts (never Python's ``hash()``, which changes per process)."""
    return parts_seed(*parts) >> 1


def kmeans(x: np.ndarray, k: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means with k-means++ init; empty clusters are re-seeded from the farthest points."""
    n = len(x)
    if n < k:
        raise ValueError(f"k-means needs at least {k} frames, got {n}")
    centers = np.empty((k, x.shape[1]), dtype=np.float64)
    centers[0] = x[rng.integers(n)]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for j in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centers[j] = x[rng.choice(n, p=p)]
        d2 = np.minimum(d2, ((x - centers[j]) ** 2).sum(1))
    x2 = (x**2).sum(1)
    for _ in range(iters):
        dist = x2[:, None] - 2 * x @ centers.T + (centers**2).sum(1)[None, :]
        assign = dist.argmin(1)
        far = np.argsort(-dist[np.arange(n), assign])
        n_far = 0
        for j in range(k):
            members = assign == j
            if members.any():
                centers[j] = x[members].mean(0)
            else:
                centers[j] = x[far[n_far]]
                n_far += 1
    return centers.astype(np.float32)


@register_codec("kmeans")
class KMeansCodec:
    kind = "kmeans"

    def __init__(self, frontend: FrontendConfig, centers: np.ndarray, mean: np.ndarray, std: np.ndarray):
        self.frontend = frontend
        self.centers = np.asarray(centers, dtype=np.float32)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.codebook_size = len(self.centers)
        self._c2 = (self.centers**2).sum(1)

    @classmethod
    def fit(
        cls, samples: Iterable[DecodedSample], frontend: FrontendConfig, cfg: CodecConfig, seed: int
    ) -> KMeansCodec:
        frames = []
        for s in samples:
            n_chunks = len(s.chunks)
            frames.append(log_mel(s.assistant_audio, s.meta.timeline.sample_rate, n_chunks, frontend))
        if not frames:
            raise ValueError("no samples to fit the k-means codec on")
        x = np.concatenate(frames).astype(np.float64)
        rng = np.random.default_rng(seed_for(seed, "codec", "kmeans"))
        if len(x) > cfg.fit_frames:
            x = x[np.sort(rng.choice(len(x), cfg.fit_frames, replace=False))]
        mean, std = x.mean(0), x.std(0) + 1e-3
        centers = kmeans((x - mean) / std, cfg.codebook_size, cfg.iters, rng)
        return cls(frontend, centers, mean, std)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        z = (frames - self.mean) / self.std
        dist = -2 * z @ self.centers.T + self._c2[None, :]
        return dist.argmin(1).astype(np.int64).reshape(-1, FRAMES_PER_CHUNK)

    def encode(self, sample: DecodedSample, frames: np.ndarray | None = None) -> np.ndarray:
        if frames is None:
            n_chunks = len(sample.chunks)
            frames = log_mel(
                sample.assistant_audio, sample.meta.timeline.sample_rate, n_chunks, self.frontend
            )
        return self.encode_frames(frames)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "frontend": self.frontend.model_dump(),
            "centers": self.centers,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KMeansCodec:
        return cls(FrontendConfig(**state["frontend"]), state["centers"], state["mean"], state["std"])


@register_codec("external")
class ExternalCodec:
    """Codes precomputed by an external codec, read from a shard member."""

    kind = "external"

    def __init__(self, codebook_size: int, member: str):
        self.codebook_size = codebook_size
        self.member = member

    def encode(self, sample: DecodedSample, frames: np.ndarray | None = None) -> np.ndarray:
        data = sample.extra.get(self.member)
        if data is None:
            raise RejectError("missing_codes", f"{sample.key}: no member {self.member!r}")
        codes = np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64)
        n_chunks = len(sample.chunks)
        if codes.size != n_chunks * FRAMES_PER_CHUNK:
            raise RejectError("missing_codes", f"{sample.key}: {codes.shape} codes for {n_chunks} chunks")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise RejectError("missing_codes", f"{sample.key}: code outside [0, {self.codebook_size})")
        return codes.reshape(n_chunks, FRAMES_PER_CHUNK)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "codebook_size": self.codebook_size, "member": self.member}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ExternalCodec:
        return cls(int(state["codebook_size"]), str(state["member"]))


def codec_from_state(state: dict[str, Any]) -> AudioCodec:
    kind = state["kind"]
    if kind not in CODECS:
        raise ValueError(f"unknown codec {kind!r}; known: {sorted(CODECS)}")
    return CODECS[kind].from_state(state)  # type: ignore[attr-defined]


def encode_codes_member(codes: np.ndarray) -> bytes:
    """Bytes of an ``assistant.codes.npy`` member (for writers of external-codec shards)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(codes, dtype=np.int16 if codes.max() < 2**15 else np.int32), allow_pickle=False)
    return buf.getvalue()
