"""The LLM client: one structured chat-completions call, retried, validated, cached, bounded.

``LLMClient.ask(template, values, Out, check=...)`` renders a versioned template, asks an
OpenAI-compatible endpoint (the ``openai`` SDK; base URL, model and key from :class:`LLMConfig`),
and returns the answer parsed through the response record ``Out``:

* structured output: ``response_format`` = the record's JSON Schema (``json_schema``); servers that
  refuse it (HTTP 400) are asked again in JSON mode with the schema in the prompt, and the client
  stays in JSON mode from then on;
* transport retries (tenacity): 429 (honouring ``retry-after``/``retry-after-ms``), 5xx, timeouts
  and connection errors, jittered exponential backoff, at most ``max_attempts``; then
  ``RejectError("llm_unavailable")``;
* validation retries: an answer that fails the record or ``check`` is sent back with the error
  appended, at most ``max_validation_attempts`` times; then a reject with the last reason
  (``llm_invalid_output``, ``marker_in_text`` or the code ``check`` raised);
* at most ``max_in_flight`` requests in flight (an asyncio semaphore);
* a :class:`~.cache.ResponseCache` keyed by model, template version and hash, rendered prompt and
  parameters.

The API key is read from the environment at construction and handed only to the SDK.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import openai
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from duplexloom.schemas.reject import RejectError

from .cache import ResponseCache, cache_key
from .config import LLMConfig
from .templates import PromptTemplate

R = TypeVar("R", bound=BaseModel)

# Servers without an API key (local vLLM, llama.cpp, tests) still need a non-empty string for the SDK.
_PLACEHOLDER_KEY = "sk-no-key-set"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``), if it said."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


@functools.cache
def _schema(out: type[BaseModel]) -> dict[str, Any]:
    return out.model_json_schema()


@functools.cache
def _schema_text(out: type[BaseModel]) -> str:
    return json.dumps(_schema(out), ensure_ascii=False)


def _error_code(e: ValidationError) -> str:
    return "marker_in_text" if "reserved marker" in str(e) else "llm_invalid_output"


def _summarize(e: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in e.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class LLMClient:
    def __init__(self, config: LLMConfig, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.cache = cache or ResponseCache(config.cache_dir)
        self.use_json_schema = config.use_json_schema
        self.stats: Counter[str] = Counter()
        self._sem = asyncio.Semaphore(config.max_in_flight)
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=os.environ.get(config.api_key_env) or _PLACEHOLDER_KEY,
            timeout=config.timeout_s,
            max_retries=0,  # tenacity owns retries, so retry-after and attempt counts are ours
        )

    async def aclose(self) -> None:
        await self._client.close()

    # ---- transport --------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        told = retry_after_s(exc)
        if told is not None:
            # Honour the server, plus a little jitter so a burst of 429s does not return in lockstep.
            return min(told, self.config.retry_after_max_s) * (1.0 + 0.1 * random.random())
        backoff = wait_random_exponential(
            multiplier=self.config.backoff_initial_s, max=self.config.backoff_max_s
        )
        return backoff(state)

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.stats[f"retry_{type(exc).__name__}"] += 1

    async def _create(self, messages: list[dict[str, str]], out: type[BaseModel], temperature: float) -> str:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
        }
        if self.config.max_tokens is not None:
            kwargs["max_tokens"] = self.config.max_tokens
        if self.use_json_schema:
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": out.__name__, "schema": _schema(out), "strict": False},
            }
        else:
            note = {
                "role": "system",
                "content": f"Reply with one JSON object that validates against:\n{_schema_text(out)}",
            }
            kwargs["messages"] = [*messages, note]
            fmt = {"type": "json_object"}
        # Sent as extra_body: the SDK would otherwise walk the whole JSON Schema through its
        # TypedDict transform on every request, which dominated client CPU at 64 in flight.
        kwargs["extra_body"] = {"response_format": fmt}
        async with self._sem:
            self.stats["requests"] += 1
            resp = await self._client.chat.completions.create(**kwargs)
        if not resp.choices:
            return ""
        choice = resp.choices[0]
        if choice.finish_reason == "length":
            self.stats["truncated"] += 1  # validation will fail on the cut JSON and ask again
        return choice.message.content or ""

    async def complete(
        self,
        messages: list[dict[str, str]],
        out: type[BaseModel],
        temperature: float,
        *,
        fell_back: bool = False,
    ) -> str:
        """One answer's text, with transport retries; ``RejectError("llm_unavailable")`` when they run out."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._create(messages, out, temperature)
        except openai.BadRequestError as e:
            if not fell_back and ("response_format" in str(e) or "json_schema" in str(e)):
                # The server does not do structured output: JSON mode + our own validation instead
                # (concurrent requests may all hit this before the first one flips the mode).
                self.use_json_schema = False
                self.stats["json_mode_fallback"] += 1
                return await self.complete(messages, out, temperature, fell_back=True)
            raise RejectError("llm_unavailable", f"HTTP 400 from the endpoint: {e.message}") from None
        except openai.APIStatusError as e:
            raise RejectError(
                "llm_unavailable", f"HTTP {e.status_code} after {self.config.max_attempts} attempt(s)"
            ) from None
        except openai.APIConnectionError as e:
            raise RejectError(
                "llm_unavailable", f"{type(e).__name__} after {self.config.max_attempts} attempt(s)"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")

    # ---- one validated, cached answer -----------------------------------------------------------

    async def ask(
        self,
        template: PromptTemplate,
        values: dict[str, str],
        out: type[R],
        *,
        temperature: float | None = None,
        check: Callable[[R], None] | None = None,
    ) -> R:
        """The answer to ``template`` filled with ``values``, parsed through ``out`` and ``check``."""
        temp = self.config.temperature if temperature is None else temperature
        messages = template.render(**values)
        params = {"temperature": temp, "max_tokens": self.config.max_tokens, "out": out.__name__}
        key = cache_key(self.config.model, template.key, template.sha256, messages, params)
        cached = self.cache.get(key)
        if cached is not None:
            parsed = out.model_validate_json(cached)  # it passed validation when it was stored
            if check is not None:
                check(parsed)
            self.stats["cache_hits"] += 1
            return parsed

        convo = list(messages)
        last: RejectError | None = None
        for _ in range(self.config.max_validation_attempts):
            content = await self.complete(convo, out, temp)
            try:
                parsed = out.model_validate_json(content)
                if check is not None:
                    check(parsed)
            except ValidationError as e:
                last = RejectError(_error_code(e), f"{template.key}: {_summarize(e)}")
            except RejectError as e:
                last = e
            else:
                self.cache.put(key, content)
                return parsed
            self.stats[f"invalid_{last.code}"] += 1
            convo += [
                {"role": "assistant", "content": content},
                {
                    "role": "user",
                    "content": f"Your answer was rejected: {last.detail}. "
                    "Reply again with the corrected JSON object only.",
                },
            ]
        assert last is not None
        raise RejectError(last.code, f"after {self.config.max_validation_attempts} attempt(s): {last.detail}")
