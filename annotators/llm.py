"""The LLM annotator: seeds to annotations through an OpenAI-compatible endpoint (issue 4).

Per seed (calls of one seed run in order; seeds run concurrently, bounded by the client):

1. turns: the seed's own dialogue when it has one the family can use, else the ``dialogue``
   template generates one (``multi_turn`` from a topic, ``task`` for ``toolcall``, ``qa`` for a
   lone question); a generated dialogue too close to its own seed is dropped (:mod:`.batch`);
2. by family: ``toolcall`` — ``actions`` (catalog calls, arguments validated, anchors verified in
   the user turn, :mod:`.checks`; with v2 prompts every call has planning text and the assistant's
   reply after the request confirms with the values or answers); ``interrupt``/``backchannel``/
   ``pause`` — ``duplex_material`` (v2: on-topic interruptions, each with its reply);
   ``interpret`` — ``translate`` (each user turn, then the assistant speaking its translation);
   ``think`` — ``cognition`` per user turn (:mod:`.cognition`, temperature 0.3) and a thinking
   ``chain`` (:mod:`.chains`).

Templates: the newest version of each (v2), or ``AnnotatorConfig.prompt_version`` (1 reproduces a
v1 run). Every field's provenance is ``llm:<model>:<template key>`` (or ``seed``) and every template's
sha256 goes into ``prompt_hashes``. Reject codes: those of :class:`~.client.LLMClient`,
:mod:`.checks`, :mod:`.cognition`, :mod:`.chains`, plus ``no_user_turn`` and ``no_tool_call``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from duplexloom.prompts import load_catalog
from duplexloom.schemas.annotation import AnnotatedTurn, Annotation, CognitionStream
from duplexloom.schemas.family import Family
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.seed import Seed

from . import chains, cognition, templates
from .checks import check_actions
from .client import LLMClient
from .config import AnnotatorConfig
from .responses import (
    ActionsOut,
    ActionsOutV2,
    ChainOut,
    CognitionOut,
    DialogueOut,
    MaterialOut,
    MaterialOutV2,
    TranslationOut,
)

NAME = "llm"


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)


def catalog_text() -> str:
    lines = []
    for spec in load_catalog().values():
        schema = json.dumps(spec.parameters, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"- {spec.name}: {spec.description_en} {schema}")
    return "\n".join(lines)


def _check_dialogue(out: DialogueOut) -> None:
    if out.turns[0].role != "user":
        raise RejectError("llm_invalid_output", "the first turn must be the user's")
    if not any(t.role == "assistant" for t in out.turns):
        raise RejectError("llm_invalid_output", "the dialogue has no assistant turn")
    if any(t.actions or t.translation for t in out.turns):
        raise RejectError("llm_invalid_output", "turns carry only role and text here")
    if any(not t.text.strip() for t in out.turns):
        raise RejectError("llm_invalid_output", "empty turn text")


class LLMAnnotator:
    name = NAME

    def __init__(self, config: AnnotatorConfig, client: LLMClient | None = None) -> None:
        self.config = config
        self.client = client or LLMClient(config.llm)
        self._catalog_text = catalog_text()

    async def aclose(self) -> None:
        await self.client.aclose()

    def _prompt(self, name: str) -> templates.PromptTemplate:
        return templates.prompt(name, self.config.prompt_version)

    def _prov(self, template: templates.PromptTemplate) -> str:
        return f"{NAME}:{self.config.llm.model}:{template.key}"

    async def annotate(self, seed: Seed, family: Family, rng: np.random.Generator) -> Annotation:
        provenance: dict[str, str] = {}
        hashes: dict[str, str] = {}
        fields: dict[str, Any] = {}

        def used(t: templates.PromptTemplate) -> str:
            hashes[t.key] = t.sha256
            return self._prov(t)

        turns = [AnnotatedTurn(role=t.role, text=t.text) for t in seed.turns]
        has_assistant = any(t.role == "assistant" for t in turns)
        if family == "toolcall" and seed.kind != "tool_request":
            style = "task"
        elif not turns:
            style = "multi_turn"
        elif not has_assistant and family not in ("asr_human", "interpret", "toolcall"):
            style = "qa"
        else:
            style = None
        if style is not None:
            t = self._prompt("dialogue")
            values = {
                "style": style,
                "lang": seed.lang,
                "topic": seed.topic,
                "seed_turns": [x.model_dump() for x in seed.turns],
            }
            out = await self.client.ask(t, {"input": _dump(values)}, DialogueOut, check=_check_dialogue)
            turns = list(out.turns)
            provenance["turns"] = used(t)
        else:
            provenance["turns"] = "seed"
        user_idx = [i for i, t in enumerate(turns) if t.role == "user"]
        if not user_idx:
            raise RejectError("no_user_turn", "the dialogue has no user turn")

        if family == "toolcall":
            turns = await self._actions(seed, turns, user_idx)
            provenance["actions"] = used(self._prompt("actions"))
        elif family in ("interrupt", "backchannel", "pause"):
            fields.update(await self._material(seed, turns))
            p = used(self._prompt("duplex_material"))
            provenance.update(interruptions=p, backchannels=p, fillers=p)
            if fields.get("interruption_replies"):
                provenance["interruption_replies"] = p
        elif family == "interpret":
            turns = await self._translate(seed, turns, user_idx)
            provenance["translation"] = used(self._prompt("translate"))
        elif family == "think":
            fields["cognition"] = await self._cognition(seed, turns, user_idx)
            provenance["cognition"] = used(self._prompt("cognition"))
            turns = cognition.speak_voice(turns, fields["cognition"])  # the reply speaks voice_response
            if self.config.think_chains:
                fields["chains"] = await self._chain(seed, turns, user_idx)
                provenance["chains"] = used(self._prompt("chain"))

        return Annotation(
            seed_id=seed.id,
            lang=seed.lang,
            family=family,
            turns=tuple(turns),
            provenance=provenance,
            prompt_hashes=hashes,
            **fields,
        )

    async def _actions(
        self, seed: Seed, turns: list[AnnotatedTurn], user_idx: list[int]
    ) -> list[AnnotatedTurn]:
        values = {
            "lang": seed.lang,
            "tools_hint": list(seed.tools),
            "turns": [{"index": i, "role": t.role, "text": t.text} for i, t in enumerate(turns)],
        }

        t = self._prompt("actions")
        v2 = t.version >= 2

        def check(out: ActionsOut | ActionsOutV2) -> None:
            seen = set()
            for req in out.requests:
                if req.turn_index not in user_idx:
                    raise RejectError("llm_invalid_output", f"turn_index {req.turn_index} is not a user turn")
                if req.turn_index in seen:
                    raise RejectError("llm_invalid_output", f"turn_index {req.turn_index} listed twice")
                seen.add(req.turn_index)
                check_actions(turns[req.turn_index].text, req.actions)
                if v2 and any(not (a.planning or "").strip() for a in req.actions):
                    raise RejectError(
                        "llm_invalid_output", f"turn {req.turn_index}: a call without planning text"
                    )
                if v2 and req.actions and not req.reply.strip():
                    raise RejectError("llm_invalid_output", f"turn {req.turn_index}: empty reply")
            if not any(r.actions for r in out.requests):
                raise RejectError("no_tool_call", "no user turn asks for a tool")

        out = await self.client.ask(
            t,
            {"catalog": self._catalog_text, "input": _dump(values)},
            ActionsOutV2 if v2 else ActionsOut,
            check=check,
        )
        new = list(turns)
        # From the last request backwards, so an inserted reply does not shift the indices still to do.
        for req in sorted(out.requests, key=lambda r: -r.turn_index):
            old = new[req.turn_index]
            new[req.turn_index] = AnnotatedTurn(role=old.role, text=old.text, actions=tuple(req.actions))
            reply = getattr(req, "reply", None)
            if reply is None or not req.actions:
                continue
            nxt = req.turn_index + 1
            if nxt < len(new) and new[nxt].role == "assistant":
                new[nxt] = AnnotatedTurn(role="assistant", text=reply)  # the reply that fits the calls
            else:
                new.insert(nxt, AnnotatedTurn(role="assistant", text=reply))
        return new

    async def _material(self, seed: Seed, turns: list[AnnotatedTurn]) -> dict[str, tuple[str, ...]]:
        c = self.config
        values = {
            "lang": seed.lang,
            "counts": {
                "interruptions": c.n_interruptions,
                "backchannels": c.n_backchannels,
                "fillers": c.n_fillers,
            },
            "dialogue": [t.model_dump(include={"role", "text"}) for t in turns],
        }
        t = self._prompt("duplex_material")
        if t.version < 2:
            out = await self.client.ask(t, {"input": _dump(values)}, MaterialOut)
            replies: tuple[str, ...] = ()
        else:

            def check(o: MaterialOutV2) -> None:
                if len(o.interruption_replies) != len(o.interruptions):
                    raise RejectError(
                        "llm_invalid_output",
                        f"{len(o.interruption_replies)} interruption_replies for {len(o.interruptions)} interruptions",
                    )

            out = await self.client.ask(t, {"input": _dump(values)}, MaterialOutV2, check=check)
            replies = tuple(out.interruption_replies[: c.n_interruptions])
        return {
            "interruptions": tuple(out.interruptions[: c.n_interruptions]),
            "interruption_replies": replies,
            "backchannels": tuple(out.backchannels[: c.n_backchannels]),
            "fillers": tuple(out.fillers[: c.n_fillers]),
        }

    async def _translate(
        self, seed: Seed, turns: list[AnnotatedTurn], user_idx: list[int]
    ) -> list[AnnotatedTurn]:
        target = "en" if seed.lang == "zh" else "zh"
        values = {
            "source_lang": seed.lang,
            "target_lang": target,
            "user_turns": [{"turn_index": i, "text": turns[i].text} for i in user_idx],
        }

        def check(out: TranslationOut) -> None:
            got = sorted(x.turn_index for x in out.translations)
            if got != user_idx:
                raise RejectError(
                    "llm_invalid_output", f"need one translation for each of turns {user_idx}, got {got}"
                )
            if any(not x.translation.strip() for x in out.translations):
                raise RejectError("llm_invalid_output", "empty translation")

        t = self._prompt("translate")
        out = await self.client.ask(t, {"input": _dump(values)}, TranslationOut, check=check)
        # Each user turn, then the assistant speaking its translation (SPEC section 11: the assistant
        # of an interpret session speaks the translation of each user turn, nothing else).
        by_turn = {x.turn_index: x.translation for x in out.translations}
        new: list[AnnotatedTurn] = []
        for i in user_idx:
            new.append(AnnotatedTurn(role="user", text=turns[i].text, translation=by_turn[i]))
            new.append(AnnotatedTurn(role="assistant", text=by_turn[i]))
        return new

    async def _cognition(
        self, seed: Seed, turns: list[AnnotatedTurn], user_idx: list[int]
    ) -> tuple[CognitionStream, ...]:
        c = self.config
        rate = c.speech_rate_zh_chars_per_s if seed.lang == "zh" else c.speech_rate_en_words_per_s
        budget = c.cognition_char_budget_zh if seed.lang == "zh" else c.cognition_char_budget_en
        t = self._prompt("cognition")
        streams = []
        for i in user_idx[: c.cognition_max_turns]:
            pieces = cognition.segment_per_second(turns[i].text, seed.lang, rate)
            values = {
                "lang": seed.lang,
                "budget": budget,
                "seconds": [{"second": s, "heard": p} for s, p in enumerate(pieces)],
            }
            out = await self.client.ask(
                t,
                {"input": _dump(values)},
                CognitionOut,
                temperature=c.llm.cognition_temperature,
                check=lambda o, pieces=pieces: cognition.check(o, pieces, seed.lang, budget),
            )
            streams.append(cognition.to_stream(i, out, turns[i].text, seed.lang, rate))
        return tuple(streams)

    async def _chain(self, seed: Seed, turns: list[AnnotatedTurn], user_idx: list[int]):
        values = {
            "lang": seed.lang,
            "turns": [{"turn_index": i, "segments": chains.segments(turns[i].text)} for i in user_idx],
        }
        t = self._prompt("chain")
        out = await self.client.ask(
            t, {"input": _dump(values)}, ChainOut, check=lambda o: chains.check(o.nodes, turns, seed.lang)
        )
        return tuple(out.nodes)
