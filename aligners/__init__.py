"""duplexloom.aligners: CTC forced alignment (per-word and per-character sample times).

``get_aligner("tiny")`` is the bundled default (a small CTC model trained on espeak-ng speech by
``python -m duplexloom.tools.aligner_model``); ``mms_fa`` (torchaudio's MMS_FA bundle) and
``wav2vec2_local`` (any local CTC checkpoint) are for real speech. See :mod:`.base`.
"""

from .base import (
    Aligner,
    AlignerConfig,
    Alignment,
    CTCAligner,
    available_aligners,
    get_aligner,
    register_aligner,
)

__all__ = [
    "Aligner",
    "AlignerConfig",
    "Alignment",
    "CTCAligner",
    "available_aligners",
    "get_aligner",
    "register_aligner",
]
