"""HTTP TTS against a real OpenAI-compatible server on 127.0.0.1; cloning backends up to the
library call (their packages and weights are not installed here)."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from duplexloom.schemas import RejectError, Speaker
from duplexloom.tts_adapters import MissingDependencyError, get_tts
from duplexloom.tts_adapters.base import check_requires
from duplexloom.tts_adapters.cloning import F5TTS_, CloningConfig, CosyVoiceTTS, XttsTTS

SERVER_SR = 24_000


class _Handler(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/audio/voices":
            self.requests.append(("upload", self.headers.get("Content-Type", ""), body))
            self._json(200, {"id": "cloned-voice-1"})
            return
        if self.path != "/v1/audio/speech":
            self._json(404, {"error": {"message": "no route"}})
            return
        req = json.loads(body)
        self.requests.append(("speech", req))
        if req["input"] == "please fail":
            self._json(400, {"error": {"message": "bad input", "type": "invalid_request_error"}})
            return
        # Duration depends on the text and pitch on the voice, so the test can check both arrive.
        n = int(SERVER_SR * 0.1 * len(req["input"].split()))
        freq = 300.0 if req["voice"] == "alloy" else 500.0
        tone = 0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SERVER_SR)
        buf = io.BytesIO()
        sf.write(buf, np.stack([tone, tone], axis=1), SERVER_SR, format="WAV", subtype="PCM_16")
        data = buf.getvalue()
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    _Handler.requests = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _peak_hz(audio, sr):
    return np.argmax(np.abs(np.fft.rfft(audio))) * sr / len(audio)


def test_http_voice_id(server):
    tts = get_tts("http", base_url=server, sample_rate=16_000, max_retries=0)
    spk = Speaker(id="u1", role="user", display_name="U", backend="http", engine_params={"voice": "alloy"})
    res = tts.synthesize(["one two three", "four five"], spk, "en")
    assert [r.sample_rate for r in res] == [16_000, 16_000]
    assert abs(len(res[0].audio) - 4_800) <= 2 and abs(len(res[1].audio) - 3_200) <= 2
    assert abs(_peak_hz(res[0].audio, 16_000) - 300) < 10
    assert res[0].word_starts_samples is None
    sent = [r[1] for r in _Handler.requests]
    assert sent[0]["voice"] == "alloy" and sent[0]["input"] == "one two three"
    assert sent[0]["response_format"] == "wav"


def test_http_uploads_reference_once(server, tmp_path):
    ref = tmp_path / "ref.wav"
    sf.write(ref, np.zeros(1600, np.float32), 16_000)
    spk = Speaker(
        id="u2", role="user", display_name="U", backend="http", reference_audio=str(ref), reference_text="hi"
    )
    tts = get_tts("http", base_url=server, upload_reference=True, max_retries=0)
    res = tts.synthesize(["hello there", "again"], spk, "en")
    kinds = [r[0] for r in _Handler.requests]
    assert kinds == ["upload", "speech", "speech"]
    assert b"ref.wav" in _Handler.requests[0][2] and "multipart/form-data" in _Handler.requests[0][1]
    assert _Handler.requests[1][1]["voice"] == "cloned-voice-1"
    assert abs(_peak_hz(res[0].audio, 16_000) - 500) < 10


def test_http_errors_become_rejects(server):
    tts = get_tts("http", base_url=server, default_voice="alloy", max_retries=0)
    spk = Speaker(id="u3", role="user", display_name="U", backend="http")
    with pytest.raises(RejectError) as e:
        tts.synthesize(["please fail"], spk, "en")
    assert e.value.code == "tts_failed"
    with pytest.raises(RejectError) as e:
        get_tts("http", base_url=server).synthesize(["hi"], spk, "en")
    assert e.value.code == "tts_no_voice"


def test_missing_cloning_packages_say_what_to_install():
    for name, pip in (("xtts", "coqui-tts"), ("f5", "f5-tts"), ("cosyvoice", "cosyvoice")):
        try:
            check_requires(name, {"xtts": XttsTTS, "f5": F5TTS_, "cosyvoice": CosyVoiceTTS}[name].requires)
        except MissingDependencyError as e:
            assert pip in str(e) and "pip install" in str(e)
            with pytest.raises(MissingDependencyError):
                get_tts(name)
        else:
            pytest.skip(f"{name} is installed here")


@pytest.mark.parametrize("cls", [XttsTTS, F5TTS_, CosyVoiceTTS])
def test_cloning_prepare_checks_reference(cls, tmp_path):
    ref = tmp_path / "voices" / "a.wav"
    ref.parent.mkdir()
    sf.write(ref, np.zeros(1600, np.float32), 16_000)
    backend = cls(CloningConfig(speakers_root=str(tmp_path / "voices")))
    spk = Speaker(
        id="c1", role="user", display_name="C", backend=cls.name, reference_audio="a.wav", reference_text="ok"
    )
    req = backend.prepare("你好世界", spk, "zh")
    assert req.reference_audio == str(ref) and req.text == "你好世界"
    assert req.lang_code == ("zh-cn" if cls is XttsTTS else "zh")
    with pytest.raises(RejectError) as e:
        backend.prepare("hello", spk.model_copy(update={"reference_audio": None}), "en")
    assert e.value.code == "tts_no_reference"
    with pytest.raises(RejectError) as e:
        backend.prepare("hello", spk.model_copy(update={"reference_audio": "missing.wav"}), "en")
    assert e.value.code == "tts_no_reference"
    # finish(): what the library returns at its own rate becomes session-rate float32.
    out = backend.finish(np.ones(24_000, np.float64) * 0.1, 24_000)
    assert out.sample_rate == 16_000 and out.audio.dtype == np.float32 and abs(len(out.audio) - 16_000) <= 1
