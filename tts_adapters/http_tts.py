"""``http``: an OpenAI-compatible ``POST {base_url}/audio/speech`` client (the openai SDK).

Input: texts, a :class:`Speaker`, ``lang``. The voice is ``speaker.engine_params["voice"]`` (a
server voice id) or, when the speaker has a ``reference_audio`` and ``upload_reference`` is on,
the id the server returns for the clip uploaded to ``{base_url}{upload_path}`` (stdlib multipart POST, fields
``file`` and ``text``; answer ``{"id": ...}``; done once per speaker and remembered).
Output: :class:`SynthResult` (WAV or FLAC decoded with soundfile, mixed to mono, resampled to the
session rate), ``word_starts_samples=None``.
Reject codes: ``tts_empty_text``, ``tts_no_voice``, ``tts_failed`` (the server answered an error
after the SDK's retries, or sent audio soundfile cannot decode).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from duplexloom.schemas import RejectError, Speaker

from .base import SynthResult, TTSBackend, TTSConfig, register_tts
from .resample import resample
from .text_units import word_units


class HttpTTSConfig(TTSConfig):
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = "not-needed"
    model: str = "tts-1"
    response_format: str = "wav"
    speed: float = 1.0
    default_voice: str | None = None
    upload_reference: bool = False
    upload_path: str = "/audio/voices"
    timeout_s: float = 120.0
    max_retries: int = 2


@register_tts("http")
class HttpTTS(TTSBackend):
    config_model = HttpTTSConfig
    requires = (("openai", "openai"),)

    def __init__(self, config: HttpTTSConfig) -> None:
        super().__init__(config)
        # lazy: openai (~0.8 s), a declared backend requirement; listing backends imports this module
        import openai

        self._openai = openai
        self.client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )
        self._uploaded: dict[str, str] = {}

    def settings_key(self) -> dict:
        d = super().settings_key()
        d.pop("api_key", None)  # a secret, and not something that changes the audio
        return d

    def voice_for(self, speaker: Speaker) -> str:
        cfg: HttpTTSConfig = self.config  # type: ignore[assignment]
        if "voice" in speaker.engine_params:
            return str(speaker.engine_params["voice"])
        if cfg.upload_reference and speaker.reference_audio:
            if speaker.id not in self._uploaded:
                self._uploaded[speaker.id] = self._upload(speaker)
            return self._uploaded[speaker.id]
        if cfg.default_voice:
            return cfg.default_voice
        raise RejectError("tts_no_voice", f"speaker {speaker.id}: no voice id and no reference to upload")

    def _upload(self, speaker: Speaker) -> str:
        # The speech endpoint is standard; voice upload is not, so it is a plain multipart POST.
        cfg: HttpTTSConfig = self.config  # type: ignore[assignment]
        return self._upload_httpx(cfg, Path(speaker.reference_audio or ""), speaker.reference_text or "")

    def _upload_httpx(self, cfg: HttpTTSConfig, path: Path, text: str) -> str:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
            + text.encode("utf-8")
            + b"\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + path.read_bytes()
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        req = urllib.request.Request(
            cfg.base_url.rstrip("/") + cfg.upload_path,
            data=b"".join(parts),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Authorization": f"Bearer {cfg.api_key}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout_s) as r:
                return str(json.loads(r.read())["id"])
        except urllib.error.HTTPError as e:
            raise RejectError("tts_failed", f"voice upload: HTTP {e.code} {e.read()[:200]!r}") from e

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        return [self._one(t, speaker, lang) for t in texts]

    def _one(self, text: str, speaker: Speaker, lang: str) -> SynthResult:
        cfg: HttpTTSConfig = self.config  # type: ignore[assignment]
        if not word_units(text, lang):
            raise RejectError("tts_empty_text", f"no speakable words in {text[:40]!r}")
        voice = self.voice_for(speaker)
        try:
            resp = self.client.audio.speech.create(
                model=cfg.model, voice=voice, input=text, response_format=cfg.response_format, speed=cfg.speed
            )
        except self._openai.APIError as e:
            raise RejectError("tts_failed", f"{type(e).__name__}: {e}") from e
        try:
            audio, sr = sf.read(io.BytesIO(resp.content), dtype="float32", always_2d=True)
        except sf.LibsndfileError as e:
            raise RejectError("tts_failed", f"undecodable audio: {e}") from e
        mono = audio.mean(axis=1).astype(np.float32)
        return SynthResult(audio=resample(mono, int(sr), cfg.sample_rate), sample_rate=cfg.sample_rate)
