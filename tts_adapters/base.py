"""The TTS interface and its registry.

Input: texts, a :class:`~duplexloom.schemas.Speaker` and a language (``"en"``/``"zh"``).
Output: one :class:`SynthResult` per text (float32 mono waveform, its sample rate, and the
engine's native word start times when it reports them, utterance-local samples).

Backends register with ``@register_tts("name")``, declare a pydantic config model and the Python
modules they need; :func:`get_tts` builds one and, when a module is missing, raises
:class:`MissingDependencyError` that says what to install.
Reject codes raised by backends: ``tts_unsupported_lang``, ``tts_empty_text``, ``tts_failed``,
``tts_no_reference`` (cloning backend given a speaker without a reference clip).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from duplexloom.schemas import Speaker
from duplexloom.schemas.clip import AudioRef
from duplexloom.schemas.reject import MissingDependencyError  # noqa: F401  (its home; re-exported)


@dataclass
class SynthResult:
    """One synthesized utterance. ``word_starts_samples`` are (word unit, start sample) pairs at
    ``sample_rate``, utterance-local, or ``None`` when the engine reports no word times."""

    audio: np.ndarray | None
    sample_rate: int
    word_starts_samples: list[tuple[str, int]] | None = None
    # Set by the synthesis cache (cache.py): where the audio is stored (the one audio reference
    # type, ``schemas.clip.AudioRef``: path, rate, length) and the sha256 of its float32 samples.
    # A lazy cache hit carries these and ``audio=None``: the audio is read where it is needed
    # (cache.load), not on every hit.
    stored: AudioRef | None = None
    audio_sha256: str | None = None

    @property
    def duration_samples(self) -> int:
        if self.audio is None:
            if self.stored is None:
                raise ValueError("SynthResult without audio or a stored copy")
            return self.stored.n_samples
        return int(self.audio.shape[0])


class TTSConfig(BaseModel):
    """Common config: every backend resamples its output to ``sample_rate`` (the session rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sample_rate: int = 16_000


class TTSBackend:
    """Base class of TTS backends. Subclasses set ``name``, ``config_model``, ``requires`` and
    implement :meth:`synthesize`."""

    name: ClassVar[str] = ""
    config_model: ClassVar[type[TTSConfig]] = TTSConfig
    # (import name, pip requirement) pairs checked by get_tts before construction.
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, config: TTSConfig) -> None:
        self.config = config

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        raise NotImplementedError

    def settings_key(self) -> dict[str, Any]:
        """Everything besides (text, speaker) that changes the audio: part of the cache key."""
        return {"backend": self.name, **self.config.model_dump(mode="json")}


_REGISTRY: dict[str, type[TTSBackend]] = {}


def register_tts(name: str) -> Callable[[type[TTSBackend]], type[TTSBackend]]:
    def deco(cls: type[TTSBackend]) -> type[TTSBackend]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"TTS backend {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def check_requires(name: str, requires: tuple[tuple[str, str], ...]) -> None:
    missing = [pip for mod, pip in requires if importlib.util.find_spec(mod) is None]
    if missing:
        raise MissingDependencyError(
            f"backend {name!r} needs {', '.join(missing)}: pip install {' '.join(repr(m) for m in missing)}"
        )


def tts_class(name: str) -> type[TTSBackend]:
    """The registered backend class ``name``; ``KeyError`` naming the known ones otherwise."""
    _register_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown TTS backend {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def get_tts(name: str, **config: Any) -> TTSBackend:
    """Build the registered backend ``name`` with ``config`` (validated by its config model)."""
    cls = tts_class(name)
    check_requires(name, cls.requires)
    return cls(cls.config_model(**config))


def available_tts() -> list[str]:
    _register_builtins()

    return sorted(_REGISTRY)


def _register_builtins() -> None:
    # lazy: cycle tts_adapters.base <-> its backends (they register here); plugin registry, loads on demand
    from . import cloning, espeak, http_tts  # noqa: F401
