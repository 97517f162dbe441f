"""``mms_fa``: torchaudio's ``MMS_FA`` bundle (wav2vec2, 1130 languages, romanized Latin labels).

The aligner real users run on real or cloned speech. Weights are downloaded by torchaudio on
first use (``bundle.get_model()``), so it needs network once; ``model`` may be passed in directly
(the tests pass a same-family, randomly initialized, much smaller model: the full ~300M-parameter
architecture is too slow to build on two shared CPU cores). Chinese is romanized with pypinyin.
Input/output and reject codes: see :mod:`.base`.
"""

from __future__ import annotations

import numpy as np

from .base import AlignerConfig, CTCAligner, register_aligner


class MmsFaConfig(AlignerConfig):
    with_star: bool = False  # torchaudio's extra "*" label for unknown speech; we do not use it


def mms_labels() -> tuple[str, ...]:
    """MMS_FA's label list, blank ``-`` first (matches ``bundle.get_labels(star=None)``)."""
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
        import torchaudio

        # The bundle's checkpoint is fixed per torchaudio release.
        return f"mms_fa:torchaudio-{torchaudio.__version__}"

    def __init__(self, config: MmsFaConfig, model=None) -> None:
        super().__init__(config)
        from torchaudio.pipelines import MMS_FA

        if model is None:
            model = MMS_FA.get_model(with_star=False)  # downloads the checkpoint on first use
        self.model = model.to(config.device).eval()
        self.labels = mms_labels()
        self.model_rate = int(MMS_FA.sample_rate)
        self.frame_samples = 320  # wav2vec2 feature extractor: total stride 320 samples at 16 kHz
        self.start_offset_samples = {}

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.config.device)
            emission, _ = self.model(x)
            return torch.log_softmax(emission[0], dim=-1).cpu().numpy()
