"""Streaming, shuffled WebDataset loading of shards into model batches.

Input: shard tars written by ``timeline/sample_codec.shard_tar_bytes``, read by the one shard reader
(:mod:`duplexloom.shardio`: local, ``gs://``, ``s3://``, ``pipe:``, ``http(s)://``). Output: padded batches (dict of tensors)
built from :class:`sequence.Example`.

Order is a pure function of (seed, epoch): shards are shuffled per epoch, split across loader
workers, samples go through a seeded shuffle buffer, and each sample's training window is cropped
by a seed of (seed, epoch, key). So a resumed run, which replays the epoch and skips the batches it
already trained on, sees exactly the same batches. Samples that raise :class:`RejectError` (e.g.
``missing_codes``, ``anchor_not_one_token``) are skipped and counted.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from duplexloom.schemas.reject import RejectError
from duplexloom.shardio import iter_shard_members
from duplexloom.timeline.sample_codec import DecodedSample, chunks_from_json, decode_sample, meta_from_json
from duplexloom.timeline.tokenizer import Tokenizer

from .codec import AudioCodec, KMeansCodec, seed_for
from .config import TrainConfig
from .features import log_mel, user_features
from .sequence import Example, build_example, crop_window
from .vocab import PAD, ModelVocab


def iter_raw(urls: list[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, members) of every sample of ``urls``, in order (the one shard reader,
    :func:`duplexloom.shardio.iter_shard_members`: local, ``gs://``, ``s3://``, ``pipe:``, ``http(s)://``)."""
    return iter_shard_members(urls)


def wds_audio(key: str, data: bytes) -> tuple[torch.Tensor, int] | None:
    """A WebDataset decoder for the shards' audio that needs only soundfile (libsndfile): the stock
    ``wds.torch_audio`` decodes through torchaudio's torchcodec backend, which is not installed.
    ``.flac``/``.wav`` members -> ``(float32 tensor [channels, samples], sample_rate)``, as
    ``torch_audio`` returns; ``None`` for other members (the next decoder gets them). Use::

        wds.WebDataset(urls).decode(wds_audio, wds_records)
    """
    if key.rsplit(".", 1)[-1].lower() not in ("flac", "wav"):
        return None
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(audio.T)), sr


def wds_records(key: str, data: bytes) -> object | None:
    """A WebDataset decoder for the ``json`` (-> ``SampleMeta``) and ``chunks.json`` (-> list of
    ``ChunkRecord``) members, type-stable or not; ``None`` for other members."""
    name = key.lstrip(".")
    if name == "json":
        return meta_from_json(json.loads(data))
    if name == "chunks.json":
        return chunks_from_json(json.loads(data))
    return None


def check_tokenizer(sample: DecodedSample, tokenizer: Tokenizer) -> None:
    """Shards written with another tokenizer would be read with wrong token boundaries: fatal."""
    a, b = sample.meta.tokenizer, tokenizer.info
    if a.name != b.name or (a.sha256 or None) != (b.sha256 or None):
        raise ValueError(f"{sample.key}: shards use tokenizer {a}, the trainer is configured with {b}")


def fit_texts(urls: list[str]) -> Iterator[str]:
    """Anchors and action texts of every sample (reads only ``chunks.json``; no audio decoding)."""
    for _, members in iter_raw(urls):
        for rec in chunks_from_json(json.loads(members["chunks.json"])):
            yield rec.anchor
            if rec.action_text:
                yield rec.action_text


def fit_codec(urls: list[str], cfg: TrainConfig, tokenizer: Tokenizer) -> KMeansCodec:
    def samples() -> Iterator[DecodedSample]:
        for i, (key, members) in enumerate(iter_raw(urls)):
            if i >= cfg.codec.fit_samples:
                return
            s = decode_sample(key, members)
            check_tokenizer(s, tokenizer)
            yield s

    return KMeansCodec.fit(samples(), cfg.frontend, cfg.codec, cfg.seed)


def prepare(sample: DecodedSample, codec: AudioCodec, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(assistant codes ``(n_chunks, 4)``, user features ``(n_chunks * 2, 2 * n_mels)``)."""
    n = len(sample.chunks)
    sr = sample.meta.timeline.sample_rate
    codes = codec.encode(sample)
    feats = user_features(log_mel(sample.user_audio, sr, n, cfg.frontend))
    return codes, feats


class ShardStream(IterableDataset):
    """Training stream (shuffled, cropped windows) or evaluation stream (whole samples in windows)."""

    def __init__(
        self,
        urls: list[str],
        cfg: TrainConfig,
        codec: AudioCodec,
        vocab: ModelVocab,
        train: bool = True,
        max_samples: int | None = None,
    ) -> None:
        self.urls = list(urls)
        self.cfg = cfg
        self.codec = codec
        self.vocab = vocab
        self.train = train
        self.max_samples = max_samples
        self.epoch = 0
        self.rejects: dict[str, int] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _samples(self) -> Iterator[DecodedSample]:
        urls = list(self.urls)
        info = get_worker_info()
        wid = 0 if info is None else info.id
        if self.train:
            random.Random(seed_for(self.cfg.seed, self.epoch, "shards")).shuffle(urls)
        raw = iter_raw(list(wds.split_by_worker(urls)))
        if self.train:
            rng = random.Random(seed_for(self.cfg.seed, self.epoch, wid, "samples"))
            raw = wds.filters._shuffle(raw, self.cfg.data.shuffle_buffer, self.cfg.data.shuffle_buffer, rng)
        for n, (key, members) in enumerate(raw):
            if self.max_samples is not None and n >= self.max_samples:
                return
            sample = decode_sample(key, members)
            check_tokenizer(sample, self.vocab.tokenizer)
            yield sample

    def __iter__(self) -> Iterator[Example]:
        mc = self.cfg.data.max_chunks
        max_pos = self.cfg.model.max_positions
        for sample in self._samples():
            n = len(sample.chunks)
            try:
                codes, feats = prepare(sample, self.codec, self.cfg)
                if self.train:
                    windows = [crop_window(sample.key, n, mc, self.cfg.seed, self.epoch)]
                else:
                    windows = [(c, min(n, c + mc)) for c in range(0, n, mc)]
                examples = []
                for c0, c1 in windows:
                    while c0 < c1:  # a window cut short by max_positions continues in the next one
                        ex = build_example(sample, codes, feats, self.vocab, c0, c1, max_pos)
                        examples.append(ex)
                        c0 += ex.n_chunks
                        if self.train:
                            break
            except RejectError as e:
                self.rejects[e.code] = self.rejects.get(e.code, 0) + 1
                continue
            yield from examples


def collate(examples: list[Example]) -> dict[str, Any]:
    b = len(examples)
    length = max(len(e.input_ids) for e in examples)
    n_feat = max(len(e.user_feats) for e in examples)
    dim = examples[0].user_feats.shape[1]
    out = {
        "input_ids": torch.full((b, length), PAD, dtype=torch.long),
        "user_slot": torch.full((b, length), -1, dtype=torch.long),
        "targets": torch.full((b, length), PAD, dtype=torch.long),
        "target_cat": torch.zeros((b, length), dtype=torch.long),
        "target_chunk": torch.full((b, length), -1, dtype=torch.long),
        "user_feats": torch.zeros((b, n_feat, dim), dtype=torch.float32),
    }
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        out["input_ids"][i, :n] = torch.from_numpy(e.input_ids)
        out["user_slot"][i, :n] = torch.from_numpy(e.user_slot)
        out["targets"][i, :n] = torch.from_numpy(e.targets)
        out["target_cat"][i, :n] = torch.from_numpy(e.target_cat)
        out["target_chunk"][i, :n] = torch.from_numpy(e.target_chunk)
        out["user_feats"][i, : len(e.user_feats)] = torch.from_numpy(e.user_feats)
    out["keys"] = [e.key for e in examples]
    return out


def to_device_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _worker_init(_: int) -> None:
    # Loader workers decode FLAC and compute log-mels; one torch thread each avoids oversubscription.
    torch.set_num_threads(1)


def make_loader(stream: ShardStream, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(
        stream,
        batch_size=batch_size,
        collate_fn=collate,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,  # workers are re-made per epoch so they see the new epoch's seed
    )
