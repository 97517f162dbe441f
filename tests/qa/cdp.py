"""A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fds 3 and 4, messages
separated by NUL bytes): headless Chromium, no websocket library, no downloads."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
    "--mute-audio",
)


class Chromium:
    def __init__(self, binary: str, user_data_dir: Path) -> None:
        to_r, self._to_w = os.pipe()  # we write, Chromium reads on fd 3
        self._from_r, from_w = os.pipe()  # Chromium writes on fd 4
        # bash puts the pipe ends on fds 3 and 4 exactly, then becomes Chromium.
        cmd = f'exec "$@" 3<&{to_r} 4>&{from_w}'
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                cmd,
                "chromium",
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={user_data_dir}",
                "about:blank",
            ],
            pass_fds=(to_r, from_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            data = os.read(self._from_r, 1 << 16)
            if not data:
                return
            buf += data
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        with self._cv:
            self._next += 1
            i = self._next
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        with self._cv:
            if not self._cv.wait_for(lambda: i in self._replies, timeout):
                raise TimeoutError(f"no reply to {method}")
            reply = self._replies.pop(i)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for e in self.events:
                    if e.get("method") == method and e.get("sessionId") == session:
                        self.events.remove(e)
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or not self._cv.wait(left):
                    raise TimeoutError(f"no {method} event")

    def evaluate(self, expr: str, session: str) -> Any:
        r = self.send(
            "Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True}, session
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"page JS failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def new_page(self) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        return session

    def console_errors(self, session: str) -> list[str]:
        """Console errors, uncaught exceptions and failed loads (404s) seen on ``session``."""
        out = []
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails", {}).get("exception", {}).get("description", p)))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
            self.proc.wait(timeout=10)
        except (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._to_w)
