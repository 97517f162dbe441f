"""libespeak-ng through ctypes: synchronous synthesis with native word start times.

Input: text already in the engine's script (English, or tone-numbered pinyin for
``cmn-latn-pinyin``), a voice name (``en-us+m3``), rate (words/min), pitch and range (0-100).
Output: int16 samples at the engine rate (22050 Hz) and the ``espeakEVENT_WORD`` events as
(0-based character position, character length, start sample).

The library is process-global and not re-entrant, so every call holds one lock. The PyPI wrappers
do not expose word events, hence ctypes. No reject codes: the caller checks its inputs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SAMPLERATE = 8
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_sample_rate = 0
_chunks: list[np.ndarray] = []
_events: list[tuple[int, int, int]] = []  # (text_position 1-based, length, audio_position ms)
_samples_seen = 0
_word_samples: list[tuple[int, int, int]] = []


class EspeakUnavailable(ImportError):
    """libespeak-ng is not installed."""


def _on_synth(wav, numsamples, events):  # noqa: ANN001 - ctypes callback signature
    global _samples_seen
    i = 0
    while True:
        ev = events[i]
        if ev.type == _EVENT_LIST_TERMINATED:
            break
        if ev.type == _EVENT_WORD:
            # audio_position is in ms (coarse); 'sample' counts samples emitted before the word,
            # which is what we want at full resolution.
            _word_samples.append((ev.text_position, ev.length, ev.sample))
        i += 1
    if numsamples > 0 and wav:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        _samples_seen += numsamples
    return 0


_cb = _CALLBACK(_on_synth)


def _load() -> ctypes.CDLL:
    global _lib, _sample_rate
    if _lib is not None:
        return _lib
    path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise EspeakUnavailable(
            "libespeak-ng not found: install it with `apt-get install espeak-ng libespeak-ng1`"
        ) from e
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
    if sr <= 0:
        raise EspeakUnavailable(f"espeak_Initialize failed ({sr}); is espeak-ng-data installed?")
    lib.espeak_SetSynthCallback(_cb)
    _lib, _sample_rate = lib, sr
    return lib


def engine_sample_rate() -> int:
    with _lock:
        _load()
        return _sample_rate


def synth(
    text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50, wordgap: int = 0
) -> tuple[np.ndarray, int, list[tuple[int, int, int]]]:
    """Synthesize ``text``; returns (int16 samples, sample rate, word events). Each word event is
    (0-based character index into ``text``, character length, start sample)."""
    global _samples_seen
    with _lock:
        lib = _load()
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range), ("wordgap", wordgap)):
            lib.espeak_SetParameter(_PARAM[name], int(value), 0)
        _chunks.clear()
        _word_samples.clear()
        _samples_seen = 0
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        rc = lib.espeak_Synth(buf, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if rc != _EE_OK:
            raise RuntimeError(f"espeak_Synth returned {rc}")
        audio = np.concatenate(_chunks) if _chunks else np.zeros(0, dtype=np.int16)
        events = [(pos - 1, length, sample) for pos, length, sample in _word_samples]
        return audio, _sample_rate, events
