"""``mms_fa``: torchaudio's ``MMS_FA`` bundle (wav2vec2, 1130 languages, romanized Latin labels).

The aligner real users run on real or cloned speech. Where the weights come from (first match):

1. ``model_dir`` (config) or the environment variable ``DUPLEXLOOM_MMS_FA_DIR``: a local
   directory holding the bundle's published ``model.pt`` (no network; the Dockerfile bakes one into
   the worker image with ``--build-arg MMS_FA=1``) and, only for a stand-in, ``params.json``
   (wav2vec2 architecture keyword arguments; absent = the bundle's own). Loaded exactly as
   torchaudio loads the bundle (same label-axis removal, waveform normalization and log-softmax);
   its fingerprint is the sha256 of the directory's files.
2. Otherwise torchaudio downloads the checkpoint on first use into ``$TORCH_HOME/hub/checkpoints``
   (once per worker; needs network from the workers).

``model`` may also be passed in directly (tests pass a same-family, randomly initialized, much
smaller model: the full ~300M-parameter architecture is too slow to build on two shared CPU
cores). Chinese is romanized with pypinyin. Input/output and reject codes: see :mod:`.base`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from duplexloom.localfs import dir_sha256

from .base import AlignerConfig, CTCAligner, register_aligner

MODEL_DIR_ENV = "DUPLEXLOOM_MMS_FA_DIR"


class MmsFaConfig(AlignerConfig):
    with_star: bool = False  # torchaudio's extra "*" label for unknown speech; we do not use it
    model_dir: str | None = None  # local weights (see the module docstring); None = env, then download


def local_model_dir(config: MmsFaConfig) -> Path | None:
    """The local weights directory ``config`` names (config first, then the environment), if any."""
    d = config.model_dir or os.environ.get(MODEL_DIR_ENV) or None
    return Path(d) if d else None


def load_local(d: Path):
    """The MMS_FA model from ``d/model.pt`` (+ optional ``d/params.json``), built the way
    ``MMS_FA.get_model(with_star=False)`` builds it, without network."""
    # lazy: torch, heavy; the registry imports this module to list backends (config check)
    import torch
    from torchaudio.models import wav2vec2_model
    from torchaudio.pipelines import MMS_FA
    from torchaudio.pipelines._wav2vec2 import utils as bundle_utils

    if not (d / "model.pt").is_file():
        raise FileNotFoundError(f"{d}: no model.pt (MMS_FA weights) there")
    params_file = d / "params.json"
    params = json.loads(params_file.read_text(encoding="utf-8")) if params_file.exists() else MMS_FA._params
    model = wav2vec2_model(**params)
    state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    bundle_utils._remove_aux_axes(state, MMS_FA._remove_aux_axis)
    model.load_state_dict(state)
    return bundle_utils._extend_model(
        model, normalize_waveform=MMS_FA._normalize_waveform, apply_log_softmax=True, append_star=False
    )


def mms_labels() -> tuple[str, ...]:
    """MMS_FA's label list, blank ``-`` first (matches ``bundle.get_labels(star=None)``)."""
    # lazy: torch, heavy; the registry imports this module to list backends (config check)
    from torchaudio.pipelines import MMS_FA

    labels = tuple(MMS_FA.get_labels(star=None))
    if labels[0] != "-":
        raise AssertionError(f"unexpected MMS_FA label order: {labels[:3]}")
    return labels


@register_aligner("mms_fa")
class MmsFaAligner(CTCAligner):
    config_model = MmsFaConfig

    @classmethod
    def model_fingerprint(cls, config: MmsFaConfig) -> str:
        # lazy: torch, heavy; the registry imports this module to list backends (config check)
        import torchaudio

        d = local_model_dir(config)
        if d is not None:
            return f"mms_fa:local-{dir_sha256(d)}"
        # The bundle's checkpoint is fixed per torchaudio release.
        return f"mms_fa:torchaudio-{torchaudio.__version__}"

    def __init__(self, config: MmsFaConfig, model=None) -> None:
        super().__init__(config)
        # lazy: torch, heavy; the registry imports this module to list backends (config check)
        from torchaudio.pipelines import MMS_FA

        if model is None:
            d = local_model_dir(config)
            # Without local weights torchaudio downloads the checkpoint once into $TORCH_HOME.
            model = load_local(d) if d is not None else MMS_FA.get_model(with_star=False)
        self.model = model.to(config.device).eval()
        self.labels = mms_labels()
        self.model_rate = int(MMS_FA.sample_rate)
        self.frame_samples = 320  # wav2vec2 feature extractor: total stride 320 samples at 16 kHz
        self.start_offset_samples = {}

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        # lazy: torch, heavy; the registry imports this module to list backends (config check)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.config.device)
            emission, _ = self.model(x)
            return torch.log_softmax(emission[0], dim=-1).cpu().numpy()
