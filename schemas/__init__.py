"""duplexloom.schemas: the records every stage passes along (frozen pydantic models)."""

from .action import BUILTIN_ACTION_NAMES, CONTROL_NAMES, ActionObject, ToolSpec
from .base import SCHEMA_VERSION, Record
from .chunk import ActionPiece, ChunkRecord
from .reject import Reject, RejectError
from .sample import SampleMeta, TokenizerInfo
from .seed import Seed, SeedTurn, check_untrusted_text
from .speaker import Speaker
from .timeline import AugmentationParam, Timeline
from .utterance import ClipUtterance, TimedSpan, Utterance

__all__ = [
    "SCHEMA_VERSION",
    "BUILTIN_ACTION_NAMES",
    "CONTROL_NAMES",
    "ActionObject",
    "ActionPiece",
    "AugmentationParam",
    "ChunkRecord",
    "ClipUtterance",
    "Record",
    "Reject",
    "RejectError",
    "SampleMeta",
    "Seed",
    "SeedTurn",
    "Speaker",
    "TimedSpan",
    "Timeline",
    "TokenizerInfo",
    "ToolSpec",
    "Utterance",
    "check_untrusted_text",
]
