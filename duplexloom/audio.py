"""Resampling (torchaudio's windowed-sinc resampler): the one resampler of the TTS backends, the
aligners and the exporters. Here, below every package, so that ``aligners/`` and ``tts_adapters/``
need not import each other; torch is imported only when a rate actually changes.
(``aligners/augment.py`` keeps its FFT resampler on purpose: it only degrades training audio
(speed perturbation, codec rates), where speed matters and fidelity does not.)

Input: float32 mono waveform and two integer rates. Output: float32 mono waveform. No reject codes.
"""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample ``audio`` (1-D) from ``sr_from`` Hz to ``sr_to`` Hz; returns float32."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
    if sr_from == sr_to or audio.size == 0:
        return audio.copy()
    # lazy: torch (~2 s); tts_adapters import this module on light paths (listing backends)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(audio), orig_freq=sr_from, new_freq=sr_to)
    return out.numpy().astype(np.float32, copy=False)


def rescale_samples(t_samples: int, sr_from: int, sr_to: int) -> int:
    """A sample index at ``sr_from`` expressed at ``sr_to`` (rounded to nearest)."""
    return (t_samples * sr_to + sr_from // 2) // sr_from
