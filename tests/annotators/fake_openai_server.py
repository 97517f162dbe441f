"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and the benchmark.

asyncio HTTP/1.1 with keep-alive, run in a background thread. It answers ``POST
/v1/chat/completions`` in the OpenAI wire format with schema-valid answers computed from the
request's ``Input:`` JSON block (see ``prompts/templates/*.txt``), after an optional latency, and
injects scripted faults. ``script`` maps a substring of the request text to a list of faults
consumed one per matching request (``"*"`` matches any request); a fault of ``"ok"`` serves the
normal answer.

Faults: ``429`` (with ``retry-after``), ``500``, ``slow`` (answers after ``slow_s``, longer than
the client's timeout), ``drop`` (closes the connection), ``truncated`` (JSON cut in half),
``schema`` (valid JSON, wrong shape), ``bad_anchor``, ``unknown_tool``, ``marker`` (a reserved
marker string in a text), ``no_planning`` (a call without planning text), ``no_replies`` (not one
interruption reply per interruption). Templates with a ``Version: 2`` line get the v2 answers: a
``reply`` per tool-call turn, ``interruption_replies`` and interruptions on the dialogue's topic. ``json_schema=False`` makes the server refuse ``response_format``
``json_schema`` with HTTP 400, like servers without structured output.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

_INPUT = re.compile(r"Input:\s*```json\s*(\{.*\})\s*```", re.S)
_TASK = re.compile(r"^Task: (\w+)", re.M)
_VERSION = re.compile(r"^Version: (\d+)", re.M)  # templates v2+ say so; v1 has no such line
_WORD = re.compile(r"[A-Za-z]+|[\u3400-\u9fff]{2}")


def _topic_dialogue(inp: dict[str, Any]) -> dict[str, Any]:
    topic = inp.get("topic") or (inp.get("seed_turns") or [{"text": "something"}])[0]["text"]
    if inp["lang"] == "zh":
        turns = [
            {"role": "user", "text": f"我最近一直在想{topic}的事,你能给我讲讲吗"},
            {"role": "assistant", "text": f"当然可以。{topic}这个话题挺大的,我先简单说说重点。"},
        ]
        if inp["style"] == "task":
            turns = [
                {"role": "user", "text": "车里有点热,帮我打开空调"},
                {"role": "assistant", "text": "好的,空调已打开。"},
            ]
    else:
        turns = [
            {"role": "user", "text": f"I have been wondering about {topic} lately, can you tell me more"},
            {
                "role": "assistant",
                "text": f"Of course. {topic} is a big subject, so let me start with the main points.",
            },
        ]
        if inp["style"] == "task":
            turns = [
                {"role": "user", "text": "it is hot in here, please turn on the AC"},
                {"role": "assistant", "text": "Sure, the AC is on."},
            ]
    return {"turns": turns}


def _actions(inp: dict[str, Any]) -> dict[str, Any]:
    requests = []
    for t in inp["turns"]:
        if t["role"] != "user":
            continue
        text = t["text"]
        if "AC" in text or "空调" in text:
            anchor = (
                "turn on the AC"
                if "turn on the AC" in text
                else "打开空调"
                if "打开空调" in text
                else ("AC" if "AC" in text else "空调")
            )
            act = {"name": "open_car_setting", "parameters": {"setting": "AC"}, "anchor": anchor}
        else:
            words = _WORD.findall(text)
            anchor = words[-1] if words else text
            act = {"name": "search_online_video", "parameters": {"query": anchor}, "anchor": anchor}
        requests.append(
            {
                "turn_index": t["index"],
                "actions": [dict(act, planning="the user asks for it", pattern="single")],
            }
        )
    return {"requests": requests}


def _call_reply(act: dict[str, Any], lang: str) -> str:
    """What a v2 answer says after the call: a confirmation with the values, or content."""
    if act["name"] == "open_car_setting":
        return (
            "好的，空调已打开，现在是二十四度。"
            if lang == "zh"
            else "Okay, the AC is on and set to 24 degrees."
        )
    q = act["parameters"]["query"]
    return (
        f"找到了三个关于{q}的视频，最热门的有两百万次播放。"
        if lang == "zh"
        else f"I found three videos about {q}."
    )


def _actions_v2(inp: dict[str, Any]) -> dict[str, Any]:
    out = _actions(inp)
    for req in out["requests"]:
        for a in req["actions"]:
            a["planning"] = (
                f"用户想要{a['anchor']}，调用{a['name']}。"
                if inp["lang"] == "zh"
                else f"The user asks: {a['anchor']}."
            )
        req["reply"] = _call_reply(req["actions"][0], inp["lang"])
    return out


def _material_v2(inp: dict[str, Any]) -> dict[str, Any]:
    """Interruptions on the dialogue's topic (its first user turn's last word), each with a reply."""
    first = next(t["text"] for t in inp["dialogue"] if t["role"] == "user")
    words = _WORD.findall(first)
    topic = words[-1] if words else first
    out = _material(inp)
    if inp["lang"] == "zh":
        inter = [f"你说得对，但是{topic}的时间安排太紧了", f"等一下，{topic}有没有别的办法"]
        replies = [f"明白，那{topic}我们先说最要紧的部分。", f"有的，{topic}还可以换个方式来做。"]
    else:
        inter = [
            f"you are right, but the schedule is tight for {topic}",
            f"wait, is there another way to do {topic}",
        ]
        replies = [
            f"Understood, let us start with the key part of {topic}.",
            f"Yes, there is a simpler way to do {topic}.",
        ]
    n = inp["counts"]["interruptions"]
    out["interruptions"] = (inter * 3)[:n]
    out["interruption_replies"] = (replies * 3)[:n]
    return out


def _material(inp: dict[str, Any]) -> dict[str, Any]:
    n = inp["counts"]
    if inp["lang"] == "zh":
        bank = (["你说得对,但是时间安排太紧了", "等一下,我想问别的"], ["嗯", "没错", "对"], ["那个", "呃"])
    else:
        bank = (
            ["you are right, but the schedule is tight", "wait, I want to ask something else"],
            ["mm-hmm", "right", "yeah"],
            ["um", "uh"],
        )
    return {
        k: (v * 3)[: n[k]] for k, v in zip(("interruptions", "backchannels", "fillers"), bank, strict=True)
    }


def _translate(inp: dict[str, Any]) -> dict[str, Any]:
    return {
        "translations": [
            {"turn_index": u["turn_index"], "translation": f"[{inp['target_lang']}] {u['text']}"}
            for u in inp["user_turns"]
        ]
    }


def _cognition(inp: dict[str, Any]) -> dict[str, Any]:
    budget = inp["budget"]
    entries = []
    for s in inp["seconds"]:
        heard = s["heard"] or ("嗯" if inp["lang"] == "zh" else "listening")
        entries.append({"second": s["second"], "text": heard[-budget:]})
    voice = "好的,我来回答。" if inp["lang"] == "zh" else "Okay, here is the short answer."
    return {"entries": entries, "voice_response": voice, "reply_text": voice + " (full written answer)"}


def _chain(inp: dict[str, Any]) -> dict[str, Any]:
    nodes = []
    for k, t in enumerate(inp["turns"]):
        nodes.append(
            {
                "type": "ENTITY",
                "text": t["segments"][0][:20],
                "turn_index": t["turn_index"],
                "segment_index": 0,
                "ctx_id": "e1",
            }
        )
        nodes.append(
            {
                "type": "INTENT" if k == 0 else "LOGIC",
                "text": "asks about it",
                "turn_index": t["turn_index"],
                "segment_index": len(t["segments"]) - 1,
                "ctx_id": "e1",
            }
        )
    return {"nodes": nodes}


RESPONDERS_V2: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "actions": _actions_v2,
    "duplex_material": _material_v2,
}
RESPONDERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "dialogue": _topic_dialogue,
    "actions": _actions,
    "duplex_material": _material,
    "translate": _translate,
    "cognition": _cognition,
    "chain": _chain,
}


def _inject(task: str, answer: dict[str, Any], fault: str) -> dict[str, Any]:
    answer = json.loads(json.dumps(answer))
    if fault == "bad_anchor" and task == "actions":
        answer["requests"][0]["actions"][0]["anchor"] = "zebra crossing quantum"
    elif fault == "unknown_tool" and task == "actions":
        answer["requests"][0]["actions"][0]["name"] = "teleport_somewhere"
    elif fault == "marker":

        def poison(obj: Any) -> bool:
            if isinstance(obj, dict):
                for key in ("text", "anchor", "translation", "voice_response"):
                    if isinstance(obj.get(key), str):
                        obj[key] += " <|toolcall_begin|>"
                        return True
                return any(poison(v) for v in obj.values())
            if isinstance(obj, list):
                if obj and all(isinstance(x, str) for x in obj):
                    obj[0] += " <|action_end|>"
                    return True
                return any(poison(v) for v in obj)
            return False

        poison(answer)
    elif fault == "no_planning" and task == "actions":
        answer["requests"][0]["actions"][0]["planning"] = None
    elif fault == "no_replies" and task == "duplex_material":
        answer["interruption_replies"] = answer.get("interruption_replies", [])[:1] + ["extra", "extra"]
    elif fault == "schema":
        answer = {"unexpected": True, "data": answer}
    return answer


class FakeOpenAIServer:
    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        script: dict[str, list[str]] | None = None,
        retry_after: str = "0.05",
        slow_s: float = 2.0,
        json_schema: bool = True,
    ) -> None:
        self.latency_s = latency_s
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.json_schema = json_schema
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight_seen = 0
        self.faults_served: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=512), self._loop
        )
        self._server = fut.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def _close() -> None:
            assert self._server is not None
            self._server.close()
            # Connections still held open (a "slow" answer the client gave up on) end here, not
            # after the loop is gone.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- HTTP ----------------------------------------------------------------------------------
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.auth_headers.append(headers.get("authorization", ""))
                self.in_flight += 1  # the loop is single-threaded: no lock needed
                self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
                try:
                    status, extra, payload = await self._handle(line.decode("latin-1"), body)
                finally:
                    self.in_flight -= 1
                if status == 0:  # "drop": close without answering
                    return
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                head = [
                    f"HTTP/1.1 {status} X",
                    "content-type: application/json",
                    f"content-length: {len(data)}",
                ]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return  # the client timed out and hung up
        except asyncio.CancelledError:
            return  # the server is stopping
        finally:
            writer.close()

    def _next_fault(self, text: str) -> str:
        with self._lock:
            for key, queue in self.script.items():
                if key != "*" and key in text and queue:
                    return queue.pop(0)
            queue = self.script.get("*")
            return queue.pop(0) if queue else "ok"

    async def _handle(self, request_line: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        if "/chat/completions" not in request_line:
            return 404, {}, {"error": {"message": "not found"}}
        req = json.loads(body)
        with self._lock:
            self.requests.append(req)
        messages = req["messages"]
        text = "\n".join(m["content"] for m in messages)
        task_m = _TASK.search(messages[0]["content"])
        task = task_m.group(1) if task_m else "unknown"
        self.tasks[task] += 1
        fmt = (req.get("response_format") or {}).get("type")
        if fmt == "json_schema" and not self.json_schema:
            return (
                400,
                {},
                {
                    "error": {
                        "message": "response_format json_schema is not supported",
                        "type": "invalid_request_error",
                    }
                },
            )
        # The input block of the first user message: later messages are validation re-asks.
        first_user = next(m["content"] for m in messages if m["role"] == "user")
        fault = self._next_fault(text)
        self.faults_served[fault] += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault == "429":
            return (
                429,
                {"retry-after": self.retry_after},
                {"error": {"message": "rate limited", "type": "rate_limit"}},
            )
        if fault == "500":
            return 500, {}, {"error": {"message": "internal error", "type": "server_error"}}
        if fault == "drop":
            return 0, {}, None
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        m = _INPUT.search(first_user)
        version_m = _VERSION.search(messages[0]["content"])
        responders = RESPONDERS_V2 if version_m and int(version_m.group(1)) >= 2 else {}
        responder = responders.get(task) or RESPONDERS.get(task)
        answer = responder(json.loads(m.group(1))) if m and responder else {}
        answer = _inject(task, answer, fault)
        content = json.dumps(answer, ensure_ascii=False)
        finish = "stop"
        if fault == "truncated":
            content, finish = content[: len(content) // 2], "length"
        return (
            200,
            {},
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": req.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )
