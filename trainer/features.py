"""Causal log-mel features on the chunk grid (SPEC section 2).

Input: a mono float32 track at any sample rate, padded to whole chunks. Output: log-mel frames of
``frame_ms`` (default 40 ms) as a float32 array ``(n_frames, n_mels)`` with window = hop and no
centering, so frame ``i`` is computed from samples ``[i*hop, (i+1)*hop)`` only (causal, grid
aligned). A 160 ms chunk has 4 frames: the assistant's 4 audio tokens are the codes of those frames;
the user's 2 features (80 ms) are pairs of frames stacked (:func:`user_features`).
A track shorter than its chunk count is padded with silence (SPEC section 2). No reject codes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from duplexloom.schemas.units import ASSISTANT_AUDIO_TOKENS_PER_CHUNK, USER_FEATURES_PER_CHUNK

from .config import FrontendConfig

FRAMES_PER_CHUNK = ASSISTANT_AUDIO_TOKENS_PER_CHUNK  # 40 ms frames in a 160 ms chunk
FRAMES_PER_USER_FEATURE = ASSISTANT_AUDIO_TOKENS_PER_CHUNK // USER_FEATURES_PER_CHUNK
LOG_FLOOR = 1e-6


@lru_cache(maxsize=4)
def _mel(sample_rate: int, frame_ms: int, n_mels: int) -> torchaudio.transforms.MelSpectrogram:
    hop = sample_rate * frame_ms // 1000
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=hop,
        win_length=hop,
        hop_length=hop,
        center=False,
        n_mels=n_mels,
        power=2.0,
    )


def log_mel(audio: np.ndarray, sample_rate: int, n_chunks: int, cfg: FrontendConfig) -> np.ndarray:
    """``(n_chunks * 4, n_mels)`` float32 log-mel frames of the first ``n_chunks`` chunks."""
    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if sample_rate != cfg.sample_rate:
        wav = torchaudio.functional.resample(wav, sample_rate, cfg.sample_rate)
    hop = cfg.sample_rate * cfg.frame_ms // 1000
    n_frames = n_chunks * FRAMES_PER_CHUNK
    need = n_frames * hop
    if wav.numel() < need:
        # Chunks appended after the session (the action FIFO draining) are silence on both tracks.
        wav = torch.nn.functional.pad(wav, (0, need - wav.numel()))
    with torch.no_grad():
        mel = _mel(cfg.sample_rate, cfg.frame_ms, cfg.n_mels)(wav[:need])  # (n_mels, n_frames)
    return torch.log(mel.clamp_min(LOG_FLOOR)).T.contiguous().numpy()


def user_features(frames: np.ndarray) -> np.ndarray:
    """Stack pairs of 40 ms frames into 80 ms user features: ``(n_chunks * 2, 2 * n_mels)``."""
    n, d = frames.shape
    return frames.reshape(n // FRAMES_PER_USER_FEATURE, FRAMES_PER_USER_FEATURE * d)
