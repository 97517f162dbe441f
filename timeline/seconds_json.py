"""Timeline JSON at the edges: the seconds-based input of ``duplexloom render`` <-> :class:`Timeline`.

Input format (seconds; optional fields in brackets)::

    {"session_id", "duration_s", ["family"="dialogue"], ["lang"], ["sample_rate"=16000],
     "utterances": [{"id", "speaker": "user"|"assistant", ["lang"], ["kind"="turn"], ["text"],
                     ["words": [{"text", "start_s", "end_s", ["confidence"]}]],
                     ["audio_start_s"], ["audio_end_s"], ["cut_s"], ["speaker_id"], ["turn_index"]}],
     "actions": [{"id", "name", "offset_s", ["planning"], ["parameters"], ["text"], ["anchor"],
                  ["anchor_utterance_id"], ["provenance"="input"]}]}

Defaults: ``lang`` = the first utterance's, else ``zh``; an utterance's ``text`` = its words joined
(concatenated for zh, space-separated for en); ``audio_start_s``/``audio_end_s`` = first word start /
last word end. A dict holding ``duration_samples`` is read as a :class:`Timeline` record as is.

Errors: ``RejectError("invalid_timeline", "<field path>: <reason>")``; unknown keys are errors
(typos must not silently drop data).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.units import DEFAULT_SAMPLE_RATE, samples_to_seconds, seconds_to_samples
from duplexloom.schemas.utterance import TimedSpan, Utterance

from .ta4 import join_words

_TOP = {
    "session_id",
    "duration_s",
    "family",
    "lang",
    "sample_rate",
    "utterances",
    "actions",
    "schema_version",
}
_UTT = {
    "id",
    "speaker",
    "lang",
    "kind",
    "text",
    "words",
    "audio_start_s",
    "audio_end_s",
    "cut_s",
    "speaker_id",
    "turn_index",
}
_WORD = {"text", "start_s", "end_s", "confidence"}
_ACT = {
    "id",
    "name",
    "offset_s",
    "planning",
    "parameters",
    "text",
    "anchor",
    "anchor_utterance_id",
    "provenance",
}
_KINDS = ("turn", "backchannel", "interrupt", "filler", "request")


def _err(path: str, reason: str) -> RejectError:
    return RejectError("invalid_timeline", f"{path}: {reason}")


def _obj(v: Any, path: str, allowed: set[str]) -> dict:
    if not isinstance(v, dict):
        raise _err(path, f"expected an object, got {type(v).__name__}")
    extra = sorted(set(v) - allowed)
    if extra:
        raise _err(
            f"{path}.{extra[0]}" if path != "$" else extra[0], f"unknown field (allowed: {sorted(allowed)})"
        )
    return v


def _req(d: dict, key: str, path: str) -> Any:
    if key not in d:
        raise _err(_join(path, key), "required field is missing")
    return d[key]


def _join(path: str, key: str) -> str:
    return key if path == "$" else f"{path}.{key}"


def _str(v: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(v, str):
        raise _err(path, f"expected a string, got {type(v).__name__}")
    if not allow_empty and not v:
        raise _err(path, "must not be empty")
    return v


def _opt_str(d: dict, key: str, path: str) -> str | None:
    return None if d.get(key) is None else _str(d[key], _join(path, key), allow_empty=True)


def _seconds(v: Any, path: str, sr: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _err(path, f"expected a number of seconds, got {type(v).__name__}")
    if v != v or v in (float("inf"), float("-inf")):
        raise _err(path, "must be finite")
    if v < 0:
        raise _err(path, f"{v} s is before the session start")
    return seconds_to_samples(float(v), sr)


def _choice(v: Any, path: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise _err(path, f"{v!r} is not one of {list(choices)}")
    return v


def timeline_from_json(obj: Any) -> Timeline:
    """Parse the seconds-based input format (see the module docstring) into a :class:`Timeline`."""
    if isinstance(obj, dict) and "duration_samples" in obj:
        try:
            return Timeline.model_validate(obj)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) if isinstance(x, str) else f"[{x}]" for x in first["loc"]).replace(
                ".[", "["
            )
            raise _err(loc or "$", first["msg"]) from None
    d = _obj(obj, "$", _TOP)
    session_id = _str(_req(d, "session_id", "$"), "session_id")
    sr = d.get("sample_rate", DEFAULT_SAMPLE_RATE)
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0 or (sr * 160) % 1000:
        raise _err("sample_rate", f"{sr!r} is not a positive integer rate with whole-sample 160 ms chunks")
    duration = _seconds(_req(d, "duration_s", "$"), "duration_s", sr)
    family = _str(d.get("family", "dialogue"), "family")
    raw_utts = d.get("utterances", [])
    if not isinstance(raw_utts, list):
        raise _err("utterances", "expected a list")
    default_lang = "zh"
    if raw_utts and isinstance(raw_utts[0], dict) and raw_utts[0].get("lang") in ("zh", "en"):
        default_lang = raw_utts[0]["lang"]
    lang = _choice(d.get("lang", default_lang), "lang", ("zh", "en"))

    utts = []
    for i, u in enumerate(raw_utts):
        path = f"utterances[{i}]"
        u = _obj(u, path, _UTT)
        ulang = _choice(u.get("lang", lang), f"{path}.lang", ("zh", "en"))
        raw_words = u.get("words", [])
        if not isinstance(raw_words, list):
            raise _err(f"{path}.words", "expected a list")
        words = []
        for j, w in enumerate(raw_words):
            wpath = f"{path}.words[{j}]"
            w = _obj(w, wpath, _WORD)
            start = _seconds(_req(w, "start_s", wpath), f"{wpath}.start_s", sr)
            end = _seconds(_req(w, "end_s", wpath), f"{wpath}.end_s", sr)
            if end < start:
                raise _err(f"{wpath}.end_s", f"end {w['end_s']} s is before start {w['start_s']} s")
            conf = w.get("confidence")
            if conf is not None and (isinstance(conf, bool) or not isinstance(conf, int | float)):
                raise _err(f"{wpath}.confidence", "expected a number")
            text = _str(_req(w, "text", wpath), f"{wpath}.text")
            words.append(TimedSpan(text=text, start_samples=start, end_samples=end, confidence=conf))
        text = u.get("text")
        if text is None:
            if not words:
                raise _err(f"{path}.text", "required when the utterance has no words")
            text = join_words([w.text for w in words], ulang)
        text = _str(text, f"{path}.text")
        a0 = (
            _seconds(u["audio_start_s"], f"{path}.audio_start_s", sr)
            if "audio_start_s" in u
            else (words[0].start_samples if words else 0)
        )
        a1 = (
            _seconds(u["audio_end_s"], f"{path}.audio_end_s", sr)
            if "audio_end_s" in u
            else (max(w.end_samples for w in words) if words else a0)
        )
        if a1 < a0:
            raise _err(f"{path}.audio_end_s", "is before audio_start_s")
        cut = _seconds(u["cut_s"], f"{path}.cut_s", sr) if u.get("cut_s") is not None else None
        turn_index = u.get("turn_index")
        if turn_index is not None and (isinstance(turn_index, bool) or not isinstance(turn_index, int)):
            raise _err(f"{path}.turn_index", "expected an integer")
        utts.append(
            Utterance(
                id=_str(_req(u, "id", path), f"{path}.id"),
                speaker=_choice(_req(u, "speaker", path), f"{path}.speaker", ("user", "assistant")),
                speaker_id=_opt_str(u, "speaker_id", path),
                lang=ulang,
                text=text,
                kind=_choice(u.get("kind", "turn"), f"{path}.kind", _KINDS),
                turn_index=turn_index,
                words=tuple(words),
                audio_start_samples=a0,
                audio_end_samples=a1,
                cut_samples=cut,
            )
        )

    raw_actions = d.get("actions", [])
    if not isinstance(raw_actions, list):
        raise _err("actions", "expected a list")
    actions = []
    for k, a in enumerate(raw_actions):
        path = f"actions[{k}]"
        a = _obj(a, path, _ACT)
        params = a.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _err(f"{path}.parameters", f"expected an object, got {type(params).__name__}")
        actions.append(
            ActionObject(
                id=_str(_req(a, "id", path), f"{path}.id"),
                name=_str(_req(a, "name", path), f"{path}.name"),
                offset_samples=_seconds(_req(a, "offset_s", path), f"{path}.offset_s", sr),
                planning=_opt_str(a, "planning", path),
                parameters=params,
                text=_opt_str(a, "text", path),
                anchor=_opt_str(a, "anchor", path),
                anchor_utterance_id=_opt_str(a, "anchor_utterance_id", path),
                provenance=_str(a.get("provenance", "input"), f"{path}.provenance"),
            )
        )
    return Timeline(
        session_id=session_id,
        sample_rate=sr,
        duration_samples=duration,
        family=family,
        lang=lang,
        utterances=tuple(utts),
        actions=tuple(actions),
    )


def timeline_to_json(tl: Timeline) -> dict:
    """The seconds-based form of ``tl`` (inverse of :func:`timeline_from_json` up to rounding)."""
    sr = tl.sample_rate

    def s(x: int) -> float:
        return round(samples_to_seconds(x, sr), 6)

    utts = []
    for u in tl.utterances:
        d: dict[str, Any] = {"id": u.id, "speaker": u.speaker, "lang": u.lang, "kind": u.kind, "text": u.text}
        if u.speaker_id is not None:
            d["speaker_id"] = u.speaker_id
        if u.turn_index is not None:
            d["turn_index"] = u.turn_index
        d["words"] = [
            {"text": w.text, "start_s": s(w.start_samples), "end_s": s(w.end_samples)}
            | ({"confidence": w.confidence} if w.confidence is not None else {})
            for w in u.words
        ]
        d["audio_start_s"] = s(u.audio_start_samples)
        d["audio_end_s"] = s(u.audio_end_samples)
        if u.cut_samples is not None:
            d["cut_s"] = s(u.cut_samples)
        utts.append(d)
    actions = []
    for a in tl.actions:
        d = {"id": a.id, "name": a.name, "offset_s": s(a.offset_samples), "provenance": a.provenance}
        for key in ("planning", "parameters", "text", "anchor", "anchor_utterance_id"):
            if getattr(a, key) is not None:
                d[key] = getattr(a, key)
        actions.append(d)
    return {
        "schema_version": tl.schema_version,
        "session_id": tl.session_id,
        "duration_s": s(tl.duration_samples),
        "family": tl.family,
        "lang": tl.lang,
        "sample_rate": sr,
        "utterances": utts,
        "actions": actions,
    }
