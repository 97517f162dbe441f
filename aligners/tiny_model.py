"""The ``tiny`` CTC acoustic model: log-mel features -> conv stack -> BiGRU -> per-frame labels.

Input: float32 mono audio at 16 kHz. Output: log-probabilities ``[frames, labels]`` with one frame
per ``hop_samples * stride`` samples (20 ms by default); label 0 is the CTC blank, the others are
lower-case Latin letters and the apostrophe (pinyin without tones for Chinese). With
``onset_head`` the model also gives, per frame, the probability that a word starts near the frame's
center (trained on espeak-ng's word times; CTC letter spikes alone place onsets loosely, vowel-
initial words worst). No reject codes (the aligner checks inputs). Imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchaudio
from torch import nn

LABELS: tuple[str, ...] = ("<blank>", "'", *"abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class TinyConfig:
    sample_rate: int = 16_000
    n_fft: int = 400
    hop_samples: int = 160
    n_mels: int = 64
    channels: int = 160
    conv_layers: int = 4
    stride: int = 2  # of the second conv layer: output frame = hop_samples * stride
    gru_hidden: int = 128
    n_labels: int = len(LABELS)
    onset_head: bool = False  # absent from older model files: those load without the head

    @property
    def frame_samples(self) -> int:
        return self.hop_samples * self.stride

    def to_dict(self) -> dict:
        return asdict(self)


class Features(nn.Module):
    """Log-mel, normalized per utterance (so gain and voice loudness do not matter)."""

    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_samples, n_mels=cfg.n_mels
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, n_mels, frames]
        x = torch.log(self.mel(audio) + 1e-6)
        return (x - x.mean(dim=(1, 2), keepdim=True)) / (x.std(dim=(1, 2), keepdim=True) + 1e-5)


class TinyCTC(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.features = Features(cfg)
        layers: list[nn.Module] = []
        c_in = cfg.n_mels
        for i in range(cfg.conv_layers):
            stride = cfg.stride if i == 1 else 1
            layers += [
                nn.Conv1d(c_in, cfg.channels, kernel_size=5, stride=stride, padding=2),
                nn.BatchNorm1d(cfg.channels),
                nn.GELU(),
            ]
            c_in = cfg.channels
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(cfg.channels, cfg.gru_hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * cfg.gru_hidden, cfg.n_labels)
        self.onset = nn.Linear(2 * cfg.gru_hidden, 1) if cfg.onset_head else None

    def n_frames(self, n_samples: int) -> int:
        mel_frames = n_samples // self.cfg.hop_samples + 1
        return (mel_frames - 1) // self.cfg.stride + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 -> [B, frames, labels] log-probabilities."""
        return self.forward_all(audio)[0]

    def forward_all(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probabilities ``[B, frames, labels]`` and onset logits ``[B, frames]`` (None
        without the onset head)."""
        x = self.conv(self.features(audio))  # [B, C, frames]
        x, _ = self.gru(x.transpose(1, 2))
        onset = self.onset(x)[..., 0] if self.onset is not None else None
        return torch.log_softmax(self.out(x), dim=-1), onset


def log_probs(model: TinyCTC, audio: np.ndarray) -> np.ndarray:
    """Frame log-probabilities ``[frames, labels]`` for one utterance (eval mode, no grad)."""
    return frame_outputs(model, audio)[0]


def frame_outputs(model: TinyCTC, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame log-probabilities ``[frames, labels]`` and onset probabilities ``[frames]`` (None
    without the onset head) for one utterance (eval mode, no grad)."""
    with torch.inference_mode():
        lp, onset = model.forward_all(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])
    return lp[0].numpy(), (torch.sigmoid(onset[0]).numpy() if onset is not None else None)
