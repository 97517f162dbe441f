"""``tiny``: the bundled CTC aligner (weights in ``models/tiny_ctc.pt`` + ``models/tiny_ctc.json``).

Trained by ``python -m duplexloom.tools.aligner_model`` on espeak-ng speech (English and toneless
pinyin labels). Input/output and reject codes: see :mod:`.base`. ``model_dir`` points elsewhere to
load another run of the training script.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import AlignerConfig, CTCAligner, register_aligner

MODEL_DIR = Path(__file__).parent / "models"
MODEL_NAME = "tiny_ctc"


class TinyConfig(AlignerConfig):
    model_dir: str | None = None
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    time_shifts: int = 1  # >1: extra passes at fractions of a frame, onsets averaged (slower)


def load_tiny(model_dir: str | Path | None = None):
    """(model in eval mode, metadata dict) from ``<model_dir>/tiny_ctc.{pt,json}``."""
    # lazy: torch, heavy; the registry imports this module to list backends (config check)
    import torch

    from .tiny_model import TinyConfig as NetConfig
    from .tiny_model import TinyCTC

    d = Path(model_dir) if model_dir is not None else MODEL_DIR
    meta = json.loads((d / f"{MODEL_NAME}.json").read_text(encoding="utf-8"))
    net = TinyCTC(NetConfig(**meta["model"]))
    state = torch.load(d / f"{MODEL_NAME}.pt", map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval()
    return net, meta


@register_aligner("tiny")
class TinyAligner(CTCAligner):
    config_model = TinyConfig

    @classmethod
    def model_fingerprint(cls, config: TinyConfig) -> str:
        d = Path(config.model_dir) if config.model_dir is not None else MODEL_DIR
        meta = json.loads((d / f"{MODEL_NAME}.json").read_text(encoding="utf-8"))
        return f"tiny:{meta['weights_sha256']}"

    def __init__(self, config: TinyConfig, model=None, meta: dict | None = None) -> None:
        super().__init__(config)
        if model is None:
            model, meta = load_tiny(config.model_dir)
        assert meta is not None
        if config.threads:
            # lazy: torch, heavy; the registry imports this module to list backends (config check)
            import torch

            torch.set_num_threads(config.threads)
        self.model = model
        self.meta = meta
        self.labels = tuple(meta["labels"])
        self.model_rate = int(meta["model"]["sample_rate"])
        self.frame_samples = int(meta["model"]["hop_samples"]) * int(meta["model"]["stride"])
        self.start_offset_samples = {k: int(v) for k, v in meta.get("start_offset_samples", {}).items()}
        self.time_shifts = config.time_shifts
        self.start_refine = {k: [float(x) for x in v] for k, v in meta.get("start_refine", {}).items()}
        # Older model files have no onset head and no settings for it: calibrated CTC onsets only.
        self.onset_head = dict(meta.get("onset_head", {})) if meta["model"].get("onset_head") else {}

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        # lazy: torch (tiny_model), heavy; the registry imports this module to list backends (config check)
        from .tiny_model import log_probs

        return log_probs(self.model, audio)

    def frame_outputs(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        # lazy: torch (tiny_model), heavy; the registry imports this module to list backends (config check)
        from .tiny_model import frame_outputs

        return frame_outputs(self.model, audio)
