"""Voice-cloning backends for real data: ``xtts`` (coqui-tts XTTS-v2), ``f5`` (F5-TTS) and
``cosyvoice`` (CosyVoice2 zero-shot). Optional extras, loaded lazily on the first synthesis.

Input: texts, a :class:`Speaker` with ``reference_audio`` (a clip of the voice to clone) and
``reference_text`` (its transcript; XTTS does not need it), ``lang`` ``en``/``zh``.
Output: :class:`SynthResult` resampled to the session rate, ``word_starts_samples=None`` (these
engines report no word times: the aligner provides them).
Reject codes: ``tts_no_reference``, ``tts_unsupported_lang``, ``tts_empty_text``.

What runs here: everything up to the library call (:meth:`CloningTTS.prepare`) and after it
(resampling, result). The library calls themselves (``TTS(...).tts``, ``F5TTS().infer``,
``CosyVoice2.inference_zero_shot``) need their packages and model weights and were not run in this
repository's CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from duplexloom.schemas import RejectError, Speaker

from .base import SynthResult, TTSBackend, TTSConfig, register_tts
from .resample import resample
from .text_units import word_units


class CloningConfig(TTSConfig):
    device: str = "cpu"
    model: str | None = None  # model name or local directory; None = the backend's default
    speakers_root: str | None = None  # resolves relative reference_audio paths


@dataclass(frozen=True)
class CloneRequest:
    """Arguments of one library call, prepared and checked before the library is touched."""

    text: str
    lang_code: str
    reference_audio: str
    reference_text: str | None


class CloningTTS(TTSBackend):
    config_model = CloningConfig
    lang_codes: ClassVar[dict[str, str]] = {"en": "en", "zh": "zh"}
    needs_reference_text: ClassVar[bool] = True

    def __init__(self, config: CloningConfig) -> None:
        super().__init__(config)
        self._engine: Any = None

    def prepare(self, text: str, speaker: Speaker, lang: str) -> CloneRequest:
        if lang not in self.lang_codes:
            raise RejectError("tts_unsupported_lang", f"{self.name} backend: {lang!r}")
        if not word_units(text, lang):
            raise RejectError("tts_empty_text", f"no speakable words in {text[:40]!r}")
        if not speaker.reference_audio:
            raise RejectError("tts_no_reference", f"speaker {speaker.id} has no reference clip")
        ref = Path(speaker.reference_audio)
        if not ref.is_absolute() and self.config.speakers_root:
            ref = Path(self.config.speakers_root) / ref
        if not ref.exists():
            raise RejectError("tts_no_reference", f"reference clip {ref} does not exist")
        if self.needs_reference_text and not speaker.reference_text:
            raise RejectError("tts_no_reference", f"speaker {speaker.id} has no reference transcript")
        return CloneRequest(text, self.lang_codes[lang], str(ref), speaker.reference_text)

    def finish(self, wav: Any, sample_rate: int) -> SynthResult:
        audio = np.asarray(wav, dtype=np.float32).reshape(-1)
        out = resample(audio, sample_rate, self.config.sample_rate)
        return SynthResult(audio=out, sample_rate=self.config.sample_rate, word_starts_samples=None)

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        requests = [self.prepare(t, speaker, lang) for t in texts]
        if self._engine is None:
            self._engine = self.load()
        return [self.finish(*self.call(r)) for r in requests]

    def load(self) -> Any:
        raise NotImplementedError

    def call(self, req: CloneRequest) -> tuple[Any, int]:
        raise NotImplementedError


@register_tts("xtts")
class XttsTTS(CloningTTS):
    requires = (("TTS", "coqui-tts"),)  # pip install 'duplexloom[xtts]'
    lang_codes: ClassVar[dict[str, str]] = {"en": "en", "zh": "zh-cn"}
    needs_reference_text = False

    def load(self) -> Any:
        from TTS.api import TTS  # lazy: coqui-tts, optional dependency (duplexloom[xtts])

        return TTS(self.config.model or "tts_models/multilingual/multi-dataset/xtts_v2").to(
            self.config.device
        )

    def call(self, req: CloneRequest) -> tuple[Any, int]:
        wav = self._engine.tts(text=req.text, speaker_wav=req.reference_audio, language=req.lang_code)
        return wav, int(self._engine.synthesizer.output_sample_rate)


@register_tts("f5")
class F5TTS_(CloningTTS):
    requires = (("f5_tts", "f5-tts"),)  # pip install 'duplexloom[f5]'

    def load(self) -> Any:
        from f5_tts.api import F5TTS  # lazy: f5-tts, optional dependency (duplexloom[f5])

        return (
            F5TTS(device=self.config.device)
            if self.config.model is None
            else F5TTS(model=self.config.model, device=self.config.device)
        )

    def call(self, req: CloneRequest) -> tuple[Any, int]:
        wav, sr, _spec = self._engine.infer(
            ref_file=req.reference_audio, ref_text=req.reference_text, gen_text=req.text
        )
        return wav, int(sr)


@register_tts("cosyvoice")
class CosyVoiceTTS(CloningTTS):
    # CosyVoice is installed from its git repository (no PyPI release): see its README.
    requires = (
        (
            "cosyvoice",
            "cosyvoice (git clone https://github.com/FunAudioLLM/CosyVoice; pip install -r requirements.txt)",
        ),
    )

    def load(self) -> Any:
        from cosyvoice.cli.cosyvoice import CosyVoice2  # lazy: cosyvoice, optional dependency

        if not self.config.model:
            raise ValueError("cosyvoice backend needs model=<local CosyVoice2 model directory>")
        return CosyVoice2(self.config.model)

    def call(self, req: CloneRequest) -> tuple[Any, int]:
        from cosyvoice.utils.file_utils import load_wav  # lazy: cosyvoice, optional dependency

        prompt = load_wav(req.reference_audio, 16_000)
        pieces = [
            out["tts_speech"].reshape(-1).cpu().numpy()
            for out in self._engine.inference_zero_shot(req.text, req.reference_text, prompt, stream=False)
        ]
        return np.concatenate(pieces), int(self._engine.sample_rate)
