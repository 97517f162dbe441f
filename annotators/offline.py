"""The offline annotator: the embedded default — deterministic, no network, no world knowledge.

Input: a :class:`Seed` and its task family; output: an :class:`Annotation` whose ``provenance``
names, per field, what made it (``seed`` for the seed's own text, ``offline:<bank>.v<N>`` for a
phrase or template bank). It never poses as the LLM:

* ``dialogue``/``asr_human``/``asr_assistant``/``think``: the seed's own turns. A ``think`` sample
  also gets per-second causal cognition for each answered user turn, its reply spoken as the short
  voice response and kept in full as the written answer (:func:`.cognition.offline_think`).
* every family: a chronological thinking chain over the user turns (:func:`.chains.offline_chain`);
  ``provenance["chains"]`` says ``omitted:offline_no_nodes`` when the text gives none.
* ``interrupt``/``backchannel``/``pause``: the seed's turns plus interruptions, backchannels and
  fillers from ``prompts/templates/phrase_banks.json``. The ambiguous acknowledgement ("you are
  right" / "你说得对") is drawn with ``ambiguous_ack_p``: as the start of an interruption ("you are
  right, but the schedule is tight") in an ``interrupt`` seed, as a plain backchannel in a
  ``backchannel`` seed, never both in one seed.
* ``toolcall``: a request rendered from ``prompts/templates/tool_requests.json`` (seeded template,
  slot values and pattern), or the seed's own ``meta["actions"]`` when it carries them. Patterns:
  ``single`` and ``multi`` add a user request turn (anchors marked in the template) and an
  assistant acknowledgement; ``backchannel_action`` inserts a short user request right after the
  first assistant turn — the timeline lays that request over the assistant's speech.
* ``interpret``: only with a translation carried by the seed (``meta["translations"]``, one per
  user turn, or ``meta["translation"]`` for a single user turn).

Reject codes: ``needs_llm`` (topic-only seed, no assistant turn where one is needed, interpret
without a translation), ``marker_in_text`` (seed metadata with a reserved marker), plus those of
:mod:`.checks` for ``meta["actions"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from duplexloom.prompts import load_catalog
from duplexloom.schemas.annotation import AnnotatedAction, AnnotatedTurn, Annotation
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.seed import Seed, check_untrusted_text

from . import chains, cognition, templates
from .checks import check_actions
from .config import AnnotatorConfig

NAME = "offline"
_ANCHOR = re.compile(r"\[([^\[\]]+)\]")
_NEEDS_ASSISTANT = ("dialogue", "asr_assistant", "interrupt", "backchannel", "pause", "think")


def _bank_prov(name: str) -> str:
    return f"{NAME}:{templates.bank_key(name)}"


def _seed_turns(seed: Seed) -> list[AnnotatedTurn]:
    return [AnnotatedTurn(role=t.role, text=t.text) for t in seed.turns]


def _pick(rng: np.random.Generator, items: Sequence[Any], k: int) -> list[Any]:
    """k distinct items in drawn order (fewer when the list is shorter)."""
    idx = rng.permutation(len(items))[: min(k, len(items))]
    return [items[int(i)] for i in idx]


def _untrusted(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise RejectError("invalid_seed", f"{what} is not a string: {text!r}")
    try:
        return check_untrusted_text(text, what)
    except ValueError as e:
        code = "marker_in_text" if "marker" in str(e) else "invalid_seed"
        raise RejectError(code, str(e)) from None


# ---- interrupt / backchannel / pause material ------------------------------------------------


def duplex_material(
    lang: str, family: str, config: AnnotatorConfig, rng: np.random.Generator
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(interruptions, backchannels, fillers) for one seed from the phrase banks, seeded."""
    b = templates.bank("phrase_banks")[lang]
    use_ambiguous = bool(rng.random() < config.ambiguous_ack_p)
    interruptions = _pick(rng, b["interruptions"], config.n_interruptions)
    backchannels = _pick(rng, b["backchannels"], config.n_backchannels)
    fillers = _pick(rng, b["fillers"], config.n_fillers)
    if use_ambiguous and family == "interrupt":
        interruptions = [_pick(rng, b["ambiguous_interruptions"], 1)[0], *interruptions[:-1]]
    elif use_ambiguous and family == "backchannel":
        backchannels = [_pick(rng, b["ambiguous_backchannels"], 1)[0], *backchannels[:-1]]
    return tuple(interruptions), tuple(backchannels), tuple(fillers)


# ---- tool requests ------------------------------------------------------------------------------


def _fill(template: str, values: Mapping[str, str]) -> str:
    for slot, words in values.items():
        template = template.replace("{" + slot + "}", words)
    return template


def render_request(
    function: str, lang: str, rng: np.random.Generator, pattern: str
) -> tuple[str, AnnotatedAction]:
    """One spoken request for catalog ``function`` and its anchored action (template + slots)."""
    tr = templates.bank("tool_requests")
    spec = tr["functions"][function]
    words: dict[str, str] = {}
    args: dict[str, Any] = {}
    for arg, slot in spec["args"].items():
        if slot.startswith("="):  # a literal argument value, not spoken
            args[arg] = slot[1:]
            continue
        value, zh, en = tr["slots"][slot][int(rng.integers(len(tr["slots"][slot])))]
        spoken = zh if lang == "zh" else en
        words[arg] = spoken
        args[arg] = spoken if value is None else value
    marked = _fill(str(rng.choice(spec[lang])), words)
    m = _ANCHOR.search(marked)
    if m is None:  # a template without an anchor is a bug in the bank
        raise ValueError(f"tool_requests template for {function} ({lang}) has no [anchor]")
    text = _ANCHOR.sub(lambda mm: mm.group(1), marked)
    planning = _fill(spec["planning"][lang], words)
    action = AnnotatedAction(
        name=function, planning=planning, parameters=args, anchor=m.group(1), pattern=pattern
    )
    return text, action


def _choose_functions(seed: Seed, rng: np.random.Generator, k: int) -> list[str]:
    available = sorted(templates.bank("tool_requests")["functions"])
    hinted = [t for t in seed.tools if t in available]
    rest = [t for t in available if t not in hinted]
    # The seed's hint goes first (in its order), the rest is a seeded draw.
    return (hinted + _pick(rng, rest, k))[:k]


def _seed_actions(seed: Seed, utterance: str) -> tuple[AnnotatedAction, ...]:
    raw = seed.meta["actions"]
    if not isinstance(raw, list) or not raw:
        raise RejectError("invalid_seed", "meta.actions must be a non-empty list")
    try:
        actions = tuple(AnnotatedAction.model_validate(a) for a in raw)
    except ValidationError as e:
        code = "marker_in_text" if "marker" in str(e) else "invalid_seed"
        raise RejectError(code, f"meta.actions: {e.errors()[0]['msg']}") from None
    check_actions(utterance, actions)
    return actions


def tool_turns(
    seed: Seed, config: AnnotatorConfig, rng: np.random.Generator
) -> tuple[list[AnnotatedTurn], str, str]:
    """(turns, pattern, provenance) of a toolcall sample."""
    lang = seed.lang
    tr = templates.bank("tool_requests")
    turns = _seed_turns(seed)
    if "actions" in seed.meta and turns:
        utterance = turns[0].text
        actions = _seed_actions(seed, utterance)
        turns[0] = AnnotatedTurn(role="user", text=utterance, actions=actions)
        return turns, actions[0].pattern, "seed"
    pattern = str(rng.choice(list(config.tool_patterns)))
    if seed.kind == "tool_request":
        turns = []  # the seed's request text has no arguments; the template request replaces it
    # Decided after the seed's own turns are settled: a backchannel-action request needs an
    # assistant turn to talk over, and a tool_request seed has none left.
    has_assistant = any(t.role == "assistant" for t in turns)
    if pattern == "backchannel_action" and not has_assistant:
        pattern = "single"  # nothing to talk over: the request becomes an ordinary turn
    reply = AnnotatedTurn(role="assistant", text=str(rng.choice(tr["replies"][lang])))
    if pattern == "multi":
        fns = _choose_functions(seed, rng, config.multi_action_count)
        parts = [render_request(f, lang, rng, "multi") for f in fns]
        text = parts[0][0]
        for part, _ in parts[1:]:
            text = _fill(str(rng.choice(tr["joiners"][lang])), {"a": text, "b": part})
        request = AnnotatedTurn(role="user", text=text, actions=tuple(a for _, a in parts))
        out = [*turns, request, reply]
    elif pattern == "single":
        text, action = render_request(_choose_functions(seed, rng, 1)[0], lang, rng, "single")
        out = [*turns, AnnotatedTurn(role="user", text=text, actions=(action,)), reply]
    else:
        text, action = render_request(_choose_functions(seed, rng, 1)[0], lang, rng, pattern)
        first_assistant = next(i for i, t in enumerate(turns) if t.role == "assistant")
        request = AnnotatedTurn(role="user", text=text, actions=(action,))
        out = [*turns[: first_assistant + 1], request, *turns[first_assistant + 1 :]]
    for t in out:
        if t.actions:
            check_actions(t.text, t.actions)  # the bank itself must produce valid, anchored calls
    return out, pattern, _bank_prov("tool_requests")


# ---- the annotator --------------------------------------------------------------------------------


class OfflineAnnotator:
    """Deterministic annotator over the seed's own text and the banks in ``prompts/templates/``."""

    name = NAME

    def __init__(self, config: AnnotatorConfig) -> None:
        self.config = config
        load_catalog()  # fail at construction, not per record, if the catalog is broken

    async def annotate(self, seed: Seed, family: str, rng: np.random.Generator) -> Annotation:
        return self.annotate_sync(seed, family, rng)

    def annotate_sync(self, seed: Seed, family: str, rng: np.random.Generator) -> Annotation:
        turns = _seed_turns(seed)
        if not turns:
            raise RejectError(
                "needs_llm", f"seed kind {seed.kind!r} has no turns: dialogue generation needs an LLM"
            )
        has_assistant = any(t.role == "assistant" for t in turns)
        if family in _NEEDS_ASSISTANT and not has_assistant and seed.kind != "tool_request":
            raise RejectError("needs_llm", f"family {family!r} needs an assistant turn and the seed has none")
        provenance = {"turns": "seed"}
        hashes: dict[str, str] = {}
        fields: dict[str, Any] = {}

        if family == "toolcall":
            turns, pattern, prov = tool_turns(seed, self.config, rng)
            kept_seed = seed.kind != "tool_request" or prov == "seed"
            turns_prov = prov if prov == "seed" else (f"seed+{prov}" if kept_seed else prov)
            provenance.update(actions=prov, turns=turns_prov, tool_pattern=pattern)
            hashes[templates.bank_key("tool_requests")] = templates.bank_hash("tool_requests")
        elif family in ("interrupt", "backchannel", "pause"):
            inter, back, fill = duplex_material(seed.lang, family, self.config, rng)
            fields.update(interruptions=inter, backchannels=back, fillers=fill)
            prov = _bank_prov("phrase_banks")
            provenance.update(interruptions=prov, backchannels=prov, fillers=prov)
            hashes[templates.bank_key("phrase_banks")] = templates.bank_hash("phrase_banks")
        elif family == "interpret":
            turns = self._translated(seed, turns)
            provenance["translation"] = "seed"
        elif family == "think":
            turns, fields["cognition"] = cognition.offline_think(turns, seed.lang, self.config)
            provenance["cognition"] = cognition.OFFLINE_PROV if fields["cognition"] else "omitted:no_reply"
        elif family in ("asr_human", "asr_assistant", "dialogue"):
            pass
        else:  # resolve_family admits only the catalog's families, so this is a bug
            raise ValueError(f"offline annotator has no rule for family {family!r}")
        # Chronological thinking chains for every family (the ct layout serves them all); issue 20.
        fields["chains"] = chains.offline_chain(turns, seed.lang)
        provenance["chains"] = "offline:chains.v1" if fields["chains"] else "omitted:offline_no_nodes"

        return Annotation(
            seed_id=seed.id,
            lang=seed.lang,
            family=family,
            turns=tuple(turns),
            provenance=provenance,
            prompt_hashes=hashes,
            **fields,
        )

    @staticmethod
    def _translated(seed: Seed, turns: list[AnnotatedTurn]) -> list[AnnotatedTurn]:
        user_idx = [i for i, t in enumerate(turns) if t.role == "user"]
        if "translations" in seed.meta:
            given = seed.meta["translations"]
        elif "translation" in seed.meta and len(user_idx) == 1:
            given = [seed.meta["translation"]]
        else:
            raise RejectError("needs_llm", "interpret needs a translation: the seed carries none")
        if not isinstance(given, list) or len(given) != len(user_idx):
            raise RejectError(
                "invalid_seed", f"meta.translations needs one entry per user turn ({len(user_idx)})"
            )
        out = list(turns)
        for i, tr in zip(user_idx, given, strict=True):
            out[i] = AnnotatedTurn(role="user", text=turns[i].text, translation=_untrusted(tr, "translation"))
        return out


def omitted_fields(annotation: Annotation) -> list[str]:
    """Fields the annotator could not make and left out (counted by the run summary)."""
    return sorted(k for k, v in annotation.provenance.items() if v.startswith("omitted:"))
