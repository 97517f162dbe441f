"""duplexloom.tts_adapters: TTS backends behind one interface, the speaker library, the cache.

``get_tts("espeak")`` is the embedded default (libespeak-ng, native word times); ``xtts``, ``f5``,
``cosyvoice`` (voice cloning, optional extras) and ``http`` (OpenAI-compatible ``/v1/audio/speech``)
are for real data. See :mod:`.base` for the interface and reject codes.
"""

from .base import (
    MissingDependencyError,
    SynthResult,
    TTSBackend,
    TTSConfig,
    available_tts,
    get_tts,
    register_tts,
    tts_class,
)
from .cache import CachedTTS, SynthesisCache, cache_key
from .resample import resample
from .speakers import SpeakerLibrary, load_library

__all__ = [
    "CachedTTS",
    "MissingDependencyError",
    "SpeakerLibrary",
    "SynthResult",
    "SynthesisCache",
    "TTSBackend",
    "TTSConfig",
    "available_tts",
    "cache_key",
    "get_tts",
    "load_library",
    "register_tts",
    "resample",
    "tts_class",
]
