"""``wav2vec2_local``: any CTC checkpoint in a local directory (no network).

Two layouts are accepted in ``model_dir``:

- **torchaudio layout** (what the tests use): ``config.json`` with ``{"wav2vec2": {...kwargs of
  torchaudio.models.wav2vec2_model...}, "labels": [blank, ...], "sample_rate": 16000,
  "frame_samples": 320}`` and ``model.pt`` (its ``state_dict``).
- **Hugging Face layout** (``config.json`` + ``vocab.json`` + weights of a ``Wav2Vec2ForCTC``):
  loaded with ``transformers`` (``pip install transformers``) and converted with torchaudio's
  ``import_huggingface_model``; labels come from ``vocab.json`` (``|`` word delimiter becomes
  unused, ``<pad>`` is the blank). Not exercised here: transformers is not installed.

Labels must be lower-case Latin characters for :mod:`.romanize`. Input/output and reject codes:
see :mod:`.base`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from duplexloom.localfs import dir_sha256
from duplexloom.schemas.reject import MissingDependencyError

from .base import AlignerConfig, CTCAligner, register_aligner


class Wav2Vec2LocalConfig(AlignerConfig):
    model_dir: str


def _load_torchaudio_layout(d: Path):
    # lazy: torch, heavy; the registry imports this module to list backends (config check)
    import torch
    import torchaudio

    cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
    model = torchaudio.models.wav2vec2_model(**cfg["wav2vec2"])
    model.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
    return (
        model,
        tuple(cfg["labels"]),
        int(cfg.get("sample_rate", 16_000)),
        int(cfg.get("frame_samples", 320)),
    )


def _load_hf_layout(d: Path):
    try:  # lazy: transformers, optional dependency (Hugging Face checkpoints only)
        from transformers import Wav2Vec2ForCTC
    except ImportError as e:
        raise MissingDependencyError(
            f"{d} is a Hugging Face checkpoint: pip install transformers to load it"
        ) from e
    # lazy: torch, heavy; the registry imports this module to list backends (config check)
    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    by_index = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_index] != list(range(len(by_index))):
        raise ValueError(f"{d}/vocab.json indices are not 0..n-1")
    pad = next((i for tok, i in by_index if tok in ("<pad>", "[PAD]")), 0)
    if pad != 0:
        raise ValueError(f"{d}: blank/pad must be label 0 for ctc-segmentation, found {pad}")
    # "|" is the word delimiter; no text maps to it, so it only ever acts as an extra "blank".
    labels = tuple("<blank>" if i == 0 else tok.lower() for tok, i in by_index)
    model = import_huggingface_model(Wav2Vec2ForCTC.from_pretrained(str(d)))
    return model, labels, 16_000, 320


@register_aligner("wav2vec2_local")
class Wav2Vec2LocalAligner(CTCAligner):
    config_model = Wav2Vec2LocalConfig

    @classmethod
    def model_fingerprint(cls, config: Wav2Vec2LocalConfig) -> str:
        """sha256 over the checkpoint directory's files (names and bytes, streamed): a local
        checkpoint has no version, and a retrained one must not hit the old alignments."""
        return f"wav2vec2_local:{dir_sha256(Path(config.model_dir))}"

    def __init__(self, config: Wav2Vec2LocalConfig) -> None:
        super().__init__(config)
        d = Path(config.model_dir)
        if (d / "model.pt").exists():
            model, labels, sr, frame = _load_torchaudio_layout(d)
        elif (d / "vocab.json").exists():
            model, labels, sr, frame = _load_hf_layout(d)
        else:
            raise FileNotFoundError(f"{d}: neither model.pt+config.json nor a Hugging Face checkpoint")
        self.model = model.to(config.device).eval()
        self.labels, self.model_rate, self.frame_samples = labels, sr, frame
        self.start_offset_samples = {}

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        # lazy: torch, heavy; the registry imports this module to list backends (config check)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.config.device)
            emission, _ = self.model(x)
            return torch.log_softmax(emission[0], dim=-1).cpu().numpy()
