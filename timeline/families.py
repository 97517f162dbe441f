"""Task families (SPEC section 11): the seeded family choice, system prompt and speaker pair.

Input: the seed's requested family (or ``None``), a :class:`TimelineConfig` (its ``family_mix``),
the run seed and the session id. Output: a family name, the system prompt with the assistant
voice's name filled in, and the (user, assistant) speakers of the session.
The action channel of each family (SPEC 11 table): :data:`FAMILY_CHANNELS`, :func:`action_channel`
(with a run's per-family overrides), :func:`keep_channel` (a timeline with only its family's
actions) and :func:`asr_sides` (the transcripts the serializer derives).
Reject codes: ``unknown_family`` (a seed asks for a family that does not exist);
``no_speaker_for_lang`` (from the speaker library).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from duplexloom.prompts import system_prompt
from duplexloom.schemas import ActionObject, RejectError, Speaker, Timeline

from .config import FAMILIES, TimelineConfig, session_rng


class SpeakerLibrary(Protocol):
    """What planning needs of a speaker library (``tts_adapters.SpeakerLibrary`` is one): the
    timeline depends on this shape, not on ``tts_adapters/`` (tests/test_layering.py)."""

    def pick_pair(self, run_seed: int, session_id: str, lang: str) -> tuple[Speaker, Speaker]: ...


STAGE_FAMILY = "family"

# Values of Annotation.family / Seed.family that mean "let the family mix decide".
_UNSET = frozenset({"", "auto", "any", "mix"})


def choose_family(seed_family: str | None, config: TimelineConfig, run_seed: int, session_id: str) -> str:
    """The seed's family when it names one, else a weighted draw from ``config.family_mix``.

    The one place a session's family is decided (by the annotate stage, before annotating); the
    annotation carries it (``Annotation.family``) and no later stage decides it again.

    The draw ignores the seed's kind: any seed can be drawn into any family, and the annotator turns
    it into one that serves the draw, or records a substitution (``Annotation.provenance
    ["family_substitution"]``, counted in the run summary), so a run's family shares follow the mix.
    """
    if seed_family is not None and seed_family not in _UNSET:
        if seed_family not in FAMILIES:
            raise RejectError("unknown_family", f"{seed_family!r} is not one of {list(FAMILIES)}")
        return seed_family
    # Iterate in the fixed FAMILIES order, not dict order, so a reordered YAML mix draws the same.
    names = [f for f in FAMILIES if config.family_mix.get(f, 0.0) > 0]
    weights = [config.family_mix[f] for f in names]
    total = sum(weights)
    u = session_rng(run_seed, session_id, STAGE_FAMILY).random() * total
    acc = 0.0
    for name, w in zip(names, weights, strict=True):
        acc += w
        if u < acc:
            return name
    return names[-1]  # u == total only by float rounding


def family_system_prompt(family: str, lang: str, assistant_name: str) -> str:
    """The family's system prompt in ``lang`` (``{}`` -> the assistant voice's name)."""
    return system_prompt(family, lang, assistant_name)


def pick_speakers(
    run_seed: int, session_id: str, lang: str, library: SpeakerLibrary
) -> tuple[Speaker, Speaker]:
    """(user, assistant) for the session, seeded by (run seed, session id, "speakers"); the caller
    passes the library (``tts_adapters.load_library``): the timeline never loads one itself."""
    return library.pick_pair(run_seed, session_id, lang)


# ---- the action channel of each family (SPEC section 11 table) -------------------------------

Channel = Literal["asr_user", "asr_assistant", "labels", "tools", "think"]
CHANNELS: tuple[str, ...] = ("asr_user", "asr_assistant", "labels", "tools", "think")

# The families differ only in which channel carries information (DuplexSLA section 3.1).
FAMILY_CHANNELS: dict[str, tuple[str, ...]] = {
    "dialogue": (),
    "asr_human": ("asr_user",),
    "asr_assistant": ("asr_assistant",),
    "interpret": (),
    "toolcall": ("tools",),
    "interrupt": ("labels",),
    "backchannel": ("labels",),
    "pause": ("labels",),
    "think": ("think",),
}
_LABELS = frozenset({"response", "interrupt", "backchannel"})


def check_channel_overrides(overrides: dict[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """A run's per-family overrides, checked: known families and channel names, no duplicates."""
    out: dict[str, tuple[str, ...]] = {}
    for fam, chans in overrides.items():
        if fam not in FAMILIES:
            raise ValueError(f"channel override for unknown family {fam!r}; known: {list(FAMILIES)}")
        bad = sorted(set(chans) - set(CHANNELS))
        if bad:
            raise ValueError(f"family {fam}: unknown channel(s) {bad}; known: {list(CHANNELS)}")
        out[fam] = tuple(c for c in CHANNELS if c in set(chans))  # canonical order
    return out


def action_channel(family: str, overrides: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    """What the action channel of ``family`` carries: the SPEC 11 table, or the run's override."""
    if overrides and family in overrides:
        return overrides[family]
    if family not in FAMILY_CHANNELS:
        raise RejectError("unknown_family", f"{family!r} is not one of {list(FAMILIES)}")
    return FAMILY_CHANNELS[family]


def channel_of(action: ActionObject) -> str:
    """The channel an action belongs to (``asr`` by the side in its rule id)."""
    if action.name in _LABELS:
        return "labels"
    if action.name == "think":
        return "think"
    if action.name == "asr":
        return "asr_assistant" if action.id.startswith("asr_assistant") else "asr_user"
    return "tools"


def asr_sides(channels: Sequence[str]) -> tuple[str, ...]:
    """The transcript sides a channel set asks the serializer to derive."""
    return tuple(side for side in ("user", "assistant") if f"asr_{side}" in channels)


def keep_channel(timeline: Timeline, channels: Sequence[str]) -> Timeline:
    """``timeline`` with only the actions its family's channel carries (transcripts are derived by
    the serializer from ``asr_sides(channels)``, so stored ``asr`` actions are dropped here)."""
    keep = set(channels)
    actions = tuple(a for a in timeline.actions if a.name != "asr" and channel_of(a) in keep)
    if len(actions) == len(timeline.actions):
        return timeline
    return timeline.model_copy(update={"actions": actions})
