"""The offline annotator: the embedded default — deterministic, no network, no world knowledge.

Input: a :class:`Seed` and its task family; output: an :class:`Annotation` whose ``provenance``
names, per field, what made it (``seed`` for the seed's own text, ``offline:<bank>.v<N>`` for a
phrase or template bank). It never poses as the LLM. Any seed with turns serves any family (SPEC
section 11):

* ``dialogue``/``asr_human``/``asr_assistant``/``think``: the seed's own turns. A ``think`` sample
  also gets per-second causal cognition for each answered user turn, its reply spoken as the short
  voice response and kept in full as the written answer (:func:`.cognition.offline_think`).
* every family: a chronological thinking chain over the user turns (:func:`.chains.offline_chain`);
  ``provenance["chains"]`` says ``omitted:offline_no_nodes`` when the text gives none.
* ``interrupt``/``backchannel``/``pause``: the seed's turns plus interruptions with their replies,
  backchannels and fillers from ``prompts/templates/phrase_banks.json``. Interruptions are a new
  thought on the seed's ``topic`` ("[ack,] <contrast/new-thought words> ...", at least 4 units after
  an acknowledgement), each with the assistant's reply; a seed may carry its own
  (``meta["interruptions"]``). The ambiguous acknowledgement ("you are right" / "你说得对") is drawn
  with ``ambiguous_ack_p``: as the start of an interruption ("you are right, but the schedule is
  tight for ...") in an ``interrupt`` seed, as a plain backchannel in a ``backchannel`` seed, never
  both in one seed.
* ``toolcall``: a request for any of the 50 catalog functions rendered from
  ``prompts/templates/tool_requests.json`` (seeded variant, slot values and pattern) with planning
  text in the session language and the assistant's reply that fits the call (it confirms with the
  argument values, or answers a query/search/generate call with content), or the seed's own
  ``meta["actions"]`` (planning filled in when missing). Patterns: ``single`` and ``multi`` add a
  user request turn and the reply; ``backchannel_action`` inserts a short request right after the
  first assistant turn (the timeline lays it over the assistant's speech), then the reply.
* ``interpret``: each user turn followed by an assistant turn speaking its translation, from the
  seed (``meta["translations"]``, one per user turn, or ``meta["translation"]``), else a templated
  request rendered in both languages from the same draw.

A seed without an assistant turn cannot serve a family that needs the assistant's answer
(``dialogue``, ``asr_assistant``, ``interrupt``, ``backchannel``, ``pause``, ``think``): it becomes
``asr_human`` and ``provenance["family_substitution"]`` records ``"<drawn>->asr_human"`` (counted in
the run summary).

Reject codes: ``needs_llm`` (topic-only seed), ``invalid_seed``, ``marker_in_text`` (seed metadata
with a reserved marker), plus those of :mod:`.checks` for ``meta["actions"]`` and of
:mod:`.cognition` / :mod:`.chains`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from duplexloom.prompts import load_catalog
from duplexloom.schemas.annotation import AnnotatedAction, AnnotatedTurn, Annotation
from duplexloom.schemas.family import Family
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.seed import Seed, check_untrusted_text

from . import chains, cognition, templates
from .checks import check_actions
from .config import AnnotatorConfig

NAME = "offline"
_ANCHOR = re.compile(r"\[([^\[\]]+)\]")
_NEEDS_ASSISTANT = ("dialogue", "asr_assistant", "interrupt", "backchannel", "pause", "think")
SUBSTITUTE = "asr_human"  # what a seed without an assistant turn serves instead (see annotate_sync)


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


def seed_topic(seed: Seed) -> str:
    """The conversation's topic words for templated material: the seed's topic, else the bank's
    fallback ("that" / "这件事"), which keeps every template grammatical."""
    if seed.topic:
        return seed.topic
    return str(templates.bank("phrase_banks")[seed.lang]["topic_fallback"])


def duplex_material(
    seed: Seed, family: str, config: AnnotatorConfig, rng: np.random.Generator
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(interruptions, interruption_replies, backchannels, fillers) for one seed, seeded.

    Interruptions are new thoughts on the seed's topic, each with the assistant's reply. The seed
    may carry its own as ``meta["interruptions"]`` (``[{"text", "reply"}, ...]``); they go first.
    """
    lang = seed.lang
    b = templates.bank("phrase_banks")[lang]
    topic = {"topic": seed_topic(seed)}
    use_ambiguous = bool(rng.random() < config.ambiguous_ack_p)
    pairs = [
        (_fill(t, topic), _fill(r, topic)) for t, r in _pick(rng, b["interruptions"], config.n_interruptions)
    ]
    own = seed.meta.get("interruptions")
    if own is not None:
        if not isinstance(own, list) or not all(
            isinstance(x, dict) and {"text", "reply"} <= set(x) for x in own
        ):
            raise RejectError("invalid_seed", "meta.interruptions must be a list of {text, reply} objects")
        given = [
            (_untrusted(x["text"], "interruption"), _untrusted(x["reply"], "interruption reply")) for x in own
        ]
        pairs = (given + pairs)[: max(config.n_interruptions, len(given))]
    backchannels = _pick(rng, b["backchannels"], config.n_backchannels)
    fillers = _pick(rng, b["fillers"], config.n_fillers)
    if use_ambiguous and family == "interrupt":
        t, r = _pick(rng, b["ambiguous_interruptions"], 1)[0]
        pairs = [(_fill(t, topic), _fill(r, topic)), *pairs[:-1]]
    elif use_ambiguous and family == "backchannel":
        backchannels = [_pick(rng, b["ambiguous_backchannels"], 1)[0], *backchannels[:-1]]
    return (
        tuple(t for t, _ in pairs),
        tuple(r for _, r in pairs),
        tuple(backchannels),
        tuple(fillers),
    )


# ---- interpret: translations from the seed, else a templated bilingual request --------------------


def interpret_turns(
    seed: Seed, turns: list[AnnotatedTurn], rng: np.random.Generator
) -> tuple[list[AnnotatedTurn], str]:
    """(turns, provenance): every user turn carries its translation and is followed by an assistant
    turn that speaks it, so an interpret session always has assistant speech (SPEC section 11).

    Translations come from the seed (``meta["translations"]``, one per user turn, or
    ``meta["translation"]`` for a single user turn). A seed without them becomes a templated
    request rendered in both languages from the same draw (a real translation pair).
    """
    user_idx = [i for i, t in enumerate(turns) if t.role == "user"]
    if "translations" in seed.meta:
        given = seed.meta["translations"]
    elif "translation" in seed.meta and len(user_idx) == 1:
        given = [seed.meta["translation"]]
    else:
        draw = int(rng.integers(2**63))
        fn = _choice(rng, sorted(templates.bank("tool_requests")["functions"]))
        text, _, _ = render_request(fn, seed.lang, np.random.default_rng(draw), "single")
        other = "en" if seed.lang == "zh" else "zh"
        trans, _, _ = render_request(fn, other, np.random.default_rng(draw), "single")
        return [
            AnnotatedTurn(role="user", text=text, translation=trans),
            AnnotatedTurn(role="assistant", text=trans),
        ], _bank_prov("tool_requests")
    if not isinstance(given, list) or len(given) != len(user_idx):
        raise RejectError(
            "invalid_seed", f"meta.translations needs one entry per user turn ({len(user_idx)})"
        )
    out: list[AnnotatedTurn] = []
    for i, tr in zip(user_idx, given, strict=True):
        tr = _untrusted(tr, "translation")
        out.append(AnnotatedTurn(role="user", text=turns[i].text, translation=tr))
        out.append(AnnotatedTurn(role="assistant", text=tr))
    return out, "seed"


# ---- tool requests ------------------------------------------------------------------------------

_NUMBER = re.compile(r"\{#(\d+)-(\d+)\}")
_CONTENT = re.compile(r"\{@([a-z_]+)\}")
# A leading acknowledgement dropped from the second and later replies of a multi-action turn.
_ACK_PREFIX = re.compile(r"^(好的|没问题|马上来|okay|sure|done|no problem)[，,。.!！\s]+", re.IGNORECASE)


def _fill(template: str, values: Mapping[str, str]) -> str:
    for slot, words in values.items():
        template = template.replace("{" + slot + "}", words)
    return template


_ZH_DIGITS = "零一二三四五六七八九"
_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int, lang: str) -> str:
    """``n`` (0 <= n < 100000) in words: the aligner has no labels for digits, and TTS reads words
    the same way in every backend ("二十六", "twenty six")."""
    if not 0 <= n < 100_000:
        raise ValueError(f"spoken_number: {n} out of range")
    if lang == "zh":
        if n < 10:
            return _ZH_DIGITS[n]
        if n < 20:
            return "十" + (_ZH_DIGITS[n % 10] if n % 10 else "")
        out, zero = "", False
        for value, unit in ((10000, "万"), (1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d, n = divmod(n, value)
            if d:
                out += ("零" if zero and out else "") + _ZH_DIGITS[d] + unit
                zero = False
            elif out:
                zero = True
        return out
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        return _EN_TENS[n // 10] + ("" if n % 10 == 0 else " " + _EN_ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _EN_ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spoken_number(rest, lang))
    rest = n % 1000
    return (
        spoken_number(n // 1000, lang) + " thousand" + ("" if rest == 0 else " " + spoken_number(rest, lang))
    )


def _render_text(template: str, words: Mapping[str, str], lang: str, rng: np.random.Generator) -> str:
    """Fill ``{@content}`` (drawn phrase), then ``{arg}`` (slot words), then ``{#lo-hi}`` (a drawn
    integer, spoken in words)."""
    content = templates.bank("tool_requests")["content"]
    li = 0 if lang == "zh" else 1
    text = _CONTENT.sub(
        lambda m: content[m.group(1)][int(rng.integers(len(content[m.group(1)])))][li], template
    )
    text = _fill(text, words)
    return _NUMBER.sub(
        lambda m: spoken_number(int(rng.integers(int(m.group(1)), int(m.group(2)) + 1)), lang), text
    )


def _choice(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def render_request(
    function: str, lang: str, rng: np.random.Generator, pattern: str
) -> tuple[str, AnnotatedAction, str]:
    """One spoken request for catalog ``function``, its anchored action (with planning text) and the
    assistant's spoken reply that fits the call (confirms with the arguments' values, or answers)."""
    tr = templates.bank("tool_requests")
    spec = _choice(rng, tr["functions"][function])
    li = 1 if lang == "zh" else 2
    words: dict[str, str] = {}
    args: dict[str, Any] = {}
    for arg, slot in spec["args"].items():
        entry = _choice(rng, tr["slots"][slot])
        if isinstance(entry[0], dict):  # one entry fills several arguments and placeholders
            args.update(entry[0])
            words.update(entry[li])
            continue
        words[arg] = entry[li]
        args[arg] = entry[li] if entry[0] is None else entry[0]
    args.update(spec.get("fixed", {}))
    marked = _fill(str(_choice(rng, spec[lang])), words)
    m = _ANCHOR.search(marked)
    if m is None:  # a template without an anchor is a bug in the bank
        raise ValueError(f"tool_requests template for {function} ({lang}) has no [anchor]")
    text = _ANCHOR.sub(lambda mm: mm.group(1), marked)
    planning = _render_text(str(_choice(rng, spec["planning"][lang])), words, lang, rng)
    reply = _render_text(str(_choice(rng, spec["reply"][lang])), words, lang, rng)
    action = AnnotatedAction(
        name=function, planning=planning, parameters=args, anchor=m.group(1), pattern=pattern
    )
    return text, action, reply


def join_replies(replies: Sequence[str], lang: str, rng: np.random.Generator) -> str:
    """One spoken reply for a multi-action turn: the first in full, the others without their ack."""
    out = replies[0]
    for r in replies[1:]:
        r = _ACK_PREFIX.sub("", r)
        r = r[:1].upper() + r[1:] if lang == "en" else r
        out = _fill(
            str(_choice(rng, templates.bank("tool_requests")["reply_joiners"][lang])), {"a": out, "b": r}
        )
    return out


def fallback_planning(action: AnnotatedAction, lang: str) -> str:
    """Planning text for a seed's own call that has none (every call carries one, SPEC section 9)."""
    if lang == "zh":
        return f"用户说“{action.anchor}”，我来调用{action.name}处理。"
    return f'The user said "{action.anchor}"; I will call {action.name} for that.'


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
    return tuple(
        a if a.planning else a.model_copy(update={"planning": fallback_planning(a, seed.lang)})
        for a in actions
    )


def _multi_request(
    seed: Seed, config: AnnotatorConfig, rng: np.random.Generator
) -> tuple[str, tuple[AnnotatedAction, ...], str]:
    """A multi-action request; redrawn (seeded) when one call's anchor words also occur earlier."""
    lang = seed.lang
    joiners = templates.bank("tool_requests")["joiners"][lang]
    for _ in range(8):
        fns = _choose_functions(seed, rng, config.multi_action_count)
        parts = [render_request(f, lang, rng, "multi") for f in fns]
        text = parts[0][0]
        for part, _, _ in parts[1:]:
            text = _fill(str(_choice(rng, joiners)), {"a": text, "b": part})
        actions = tuple(a for _, a, _ in parts)
        try:
            check_actions(text, actions)
        except RejectError:
            continue
        return text, actions, join_replies([r for _, _, r in parts], lang, rng)
    raise ValueError(f"tool_requests bank: no anchor-ordered multi-action request for {seed.id}")


def tool_turns(
    seed: Seed, config: AnnotatorConfig, rng: np.random.Generator
) -> tuple[list[AnnotatedTurn], str, str]:
    """(turns, pattern, provenance) of a toolcall sample: any seed with turns becomes one.

    ``single``/``multi``: the seed's turns, then a request turn and the reply that fits its calls;
    ``backchannel_action``: the request right after the first assistant turn (spoken over it), then
    the reply. A seed carrying ``meta["actions"]`` keeps its own request and reply.
    """
    lang = seed.lang
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
    if pattern == "multi":
        text, actions, reply = _multi_request(seed, config, rng)
        out = [*turns, AnnotatedTurn(role="user", text=text, actions=actions), _reply(reply)]
    elif pattern == "single":
        text, action, reply = render_request(_choose_functions(seed, rng, 1)[0], lang, rng, "single")
        out = [*turns, AnnotatedTurn(role="user", text=text, actions=(action,)), _reply(reply)]
    else:
        text, action, reply = render_request(_choose_functions(seed, rng, 1)[0], lang, rng, pattern)
        first_assistant = next(i for i, t in enumerate(turns) if t.role == "assistant")
        request = AnnotatedTurn(role="user", text=text, actions=(action,))
        # The assistant finishes the turn it was speaking, then confirms the call.
        rest = turns[first_assistant + 1 :]
        out = [*turns[: first_assistant + 1], request, _reply(reply), *rest]
    for t in out:
        if t.actions:
            check_actions(t.text, t.actions)  # the bank itself must produce valid, anchored calls
    return out, pattern, _bank_prov("tool_requests")


def _reply(text: str) -> AnnotatedTurn:
    return AnnotatedTurn(role="assistant", text=text)


# ---- the annotator --------------------------------------------------------------------------------


class OfflineAnnotator:
    """Deterministic annotator over the seed's own text and the banks in ``prompts/templates/``."""

    name = NAME

    def __init__(self, config: AnnotatorConfig) -> None:
        self.config = config
        load_catalog()  # fail at construction, not per record, if the catalog is broken

    async def annotate(self, seed: Seed, family: Family, rng: np.random.Generator) -> Annotation:
        return self.annotate_sync(seed, family, rng)

    def annotate_sync(self, seed: Seed, family: Family, rng: np.random.Generator) -> Annotation:
        turns = _seed_turns(seed)
        if not turns:
            raise RejectError(
                "needs_llm", f"seed kind {seed.kind!r} has no turns: dialogue generation needs an LLM"
            )
        provenance = {"turns": "seed"}
        has_assistant = any(t.role == "assistant" for t in turns)
        if family in _NEEDS_ASSISTANT and not has_assistant and seed.kind != "tool_request":
            # Offline nothing can answer the user: the session keeps only what it can serve, the
            # user's speech and its transcript. Recorded, and counted in the run summary.
            provenance["family_substitution"] = f"{family}->{SUBSTITUTE}"
            family = SUBSTITUTE
        hashes: dict[str, str] = {}
        fields: dict[str, Any] = {}

        if family == "toolcall":
            turns, pattern, prov = tool_turns(seed, self.config, rng)
            kept_seed = seed.kind != "tool_request" or prov == "seed"
            turns_prov = prov if prov == "seed" else (f"seed+{prov}" if kept_seed else prov)
            provenance.update(actions=prov, turns=turns_prov, tool_pattern=pattern)
            hashes[templates.bank_key("tool_requests")] = templates.bank_hash("tool_requests")
        elif family in ("interrupt", "backchannel", "pause"):
            inter, replies, back, fill = duplex_material(seed, family, self.config, rng)
            fields.update(interruptions=inter, interruption_replies=replies, backchannels=back, fillers=fill)
            prov = _bank_prov("phrase_banks")
            provenance.update(interruptions=prov, interruption_replies=prov, backchannels=prov, fillers=prov)
            hashes[templates.bank_key("phrase_banks")] = templates.bank_hash("phrase_banks")
        elif family == "interpret":
            turns, prov = interpret_turns(seed, turns, rng)
            provenance["translation"] = prov
            if prov != "seed":
                provenance["turns"] = prov
                hashes[templates.bank_key("tool_requests")] = templates.bank_hash("tool_requests")
        elif family == "think":
            turns, fields["cognition"] = cognition.offline_think(turns, seed.lang, self.config)
            provenance["cognition"] = cognition.OFFLINE_PROV if fields["cognition"] else "omitted:no_reply"
        elif family in ("asr_human", "asr_assistant", "dialogue"):
            pass
        else:  # annotate_batch admits only the families of schemas/family.py, so this is a bug
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


def omitted_fields(annotation: Annotation) -> list[str]:
    """Fields the annotator could not make and left out (counted by the run summary)."""
    return sorted(k for k, v in annotation.provenance.items() if v.startswith("omitted:"))
