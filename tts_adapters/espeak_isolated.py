"""espeak-ng synthesis from a pristine engine state for every utterance (determinism).

libespeak-ng carries synthesizer state from one utterance to the next: the same text and voice
come out a few samples longer or shorter, with word events shifted, depending on what the process
synthesized before. ``srand`` has no effect on it, and ``espeak_Terminate`` + ``espeak_Initialize``
hangs in synchronous mode. The first synthesis after initialization is reproducible, though, so a
small *zygote* process initializes the library once and forks one child per utterance: every
utterance starts from the same state, and a rerun of the pipeline gives byte-identical audio
without sharing a cache. Cost: one fork of a small process per utterance (about a millisecond).

Protocol on the zygote's stdin/stdout: 4-byte big-endian length + pickle. Request
``(text, voice, rate, pitch, pitch_range, wordgap)``; reply ``("ok", (pcm, sr, events))`` or
``("error", message)`` or ``("crashed", message)``. No reject codes here: the caller checks its inputs.
"""

from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import Any

import numpy as np

from duplexloom.tts_adapters import espeak_lib

_HEADER = struct.Struct(">I")


class EngineCrashed(RuntimeError):
    """The forked child died while synthesizing (libespeak-ng 1.51 segfaults on some voice/text
    pairs). Only that child died: the zygote and the caller go on."""


def _read_msg(stream: Any) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("espeak zygote closed its pipe")
    (n,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(n))


def _write_msg(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class _Zygote:
    """Parent-side handle of the zygote process; one per process, started lazily, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()

    def _ensure(self) -> subprocess.Popen[bytes]:
        # A forked copy of this handle (a Beam worker forked from the launcher) must not share the
        # parent's pipes: start its own zygote.
        if self._proc is None or self._proc.poll() is not None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "duplexloom.tts_adapters.espeak_isolated"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._proc

    def synth(self, *request: Any) -> tuple[np.ndarray, int, list[tuple[int, int, int]]]:
        with self._lock:
            proc = self._ensure()
            _write_msg(proc.stdin, request)
            status, payload = _read_msg(proc.stdout)
        if status == "crashed":
            raise EngineCrashed(payload)
        if status == "error":
            raise ValueError(payload)
        return payload

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None and self._pid == os.getpid():
            self._proc.stdin.close()  # type: ignore[union-attr]
            self._proc.wait(timeout=10)


_zygote = _Zygote()
atexit.register(_zygote.close)


def synth(
    text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50, wordgap: int = 0
) -> tuple[np.ndarray, int, list[tuple[int, int, int]]]:
    """Same contract as :func:`duplexloom.tts_adapters.espeak_lib.synth`, from a pristine state."""
    return _zygote.synth(text, voice, rate, pitch, pitch_range, wordgap)


def _serve() -> None:
    """Zygote main loop: initialize once, fork a child per request, relay its answer."""
    espeak_lib.engine_sample_rate()  # loads and initializes the library before any fork
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = _read_msg(stdin)
        except EOFError:
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesize from the pristine state, answer, and leave at once
            try:
                os.close(read_fd)
                with os.fdopen(write_fd, "wb") as out:
                    try:
                        reply = ("ok", espeak_lib.synth(*request))
                    except (ValueError, RuntimeError) as e:
                        reply = ("error", str(e))
                    _write_msg(out, reply)
            finally:
                # Never fall back into the zygote's loop: a child that dies before answering
                # reads as a crash in the zygote.
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as inp:
            try:
                reply = _read_msg(inp)
            except EOFError:
                reply = ("crashed", f"espeak-ng crashed on request {str(request)[:80]}")
        os.waitpid(pid, 0)
        _write_msg(stdout, reply)


if __name__ == "__main__":
    _serve()
