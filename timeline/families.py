"""Task families (SPEC section 11): the seeded family choice, system prompt and speaker pair.

Input: the seed's requested family (or ``None``), a :class:`TimelineConfig` (its ``family_mix``),
the run seed and the session id. Output: a family name, the system prompt with the assistant
voice's name filled in, and the (user, assistant) speakers of the session.
Reject codes: ``unknown_family`` (a seed asks for a family that does not exist);
``no_speaker_for_lang`` (from the speaker library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from duplexloom.schemas import RejectError, Speaker

from .config import FAMILIES, TimelineConfig, session_rng

if TYPE_CHECKING:  # the speaker library lives in tts_adapters; imported lazily (no torch here)
    from duplexloom.tts_adapters.speakers import SpeakerLibrary

STAGE_FAMILY = "family"

# Values of Annotation.family / Seed.family that mean "let the family mix decide".
_UNSET = frozenset({"", "auto", "any", "mix"})


def choose_family(seed_family: str | None, config: TimelineConfig, run_seed: int, session_id: str) -> str:
    """The seed's family when it names one, else a weighted draw from ``config.family_mix``.

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
    from duplexloom.prompts import system_prompt

    return system_prompt(family, lang, assistant_name)


def load_default_library() -> SpeakerLibrary:
    """The embedded speaker library (18 canonical assistant voices)."""
    from duplexloom.tts_adapters.speakers import load_library

    return load_library()


def pick_speakers(
    run_seed: int, session_id: str, lang: str, library: SpeakerLibrary | None = None
) -> tuple[Speaker, Speaker]:
    """(user, assistant) for the session, seeded by (run seed, session id, "speakers")."""
    lib = library if library is not None else load_default_library()
    return lib.pick_pair(run_seed, session_id, lang)
