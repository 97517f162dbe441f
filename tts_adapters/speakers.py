"""Speaker library: the manifest of voices and the seeded choice of two speakers per session.

Input: a manifest JSON (``{"schema_version", "speakers": [Speaker, ...]}``); the embedded one,
``embedded.json``, has 18 canonical assistant voices and 120 user voices for the ``espeak``
backend (voice variant + accent + rate + pitch + range). A manifest for a cloning backend lists
``reference_audio`` (path relative to the manifest, or absolute) and ``reference_text``.
Output: :class:`SpeakerLibrary`; :meth:`SpeakerLibrary.pick_pair` returns (user, assistant) drawn
from a generator seeded by (run seed, session id, ``"speakers"``), always two distinct voices.
Reject code: ``no_speaker_for_lang`` (the library has no user or assistant for that language).

``python -m duplexloom.tts_adapters.speakers`` rewrites ``embedded.json`` from
:func:`build_embedded` (deterministic).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from duplexloom.schemas import RejectError, Speaker
from duplexloom.schemas.rng import seeded_rng  # its home is schemas/rng.py; still importable here

EMBEDDED_PATH = Path(__file__).parent / "speakers" / "embedded.json"
STAGE = "speakers"


@dataclass(frozen=True)
class SpeakerLibrary:
    speakers: tuple[Speaker, ...]
    root: Path | None = None  # directory that relative reference_audio paths are resolved against

    @property
    def assistants(self) -> tuple[Speaker, ...]:
        return tuple(s for s in self.speakers if s.role == "assistant")

    @property
    def users(self) -> tuple[Speaker, ...]:
        return tuple(s for s in self.speakers if s.role == "user")

    def by_id(self, speaker_id: str) -> Speaker:
        for s in self.speakers:
            if s.id == speaker_id:
                return s
        raise KeyError(speaker_id)

    def reference_path(self, speaker: Speaker) -> Path | None:
        if speaker.reference_audio is None:
            return None
        p = Path(speaker.reference_audio)
        return p if p.is_absolute() or self.root is None else self.root / p

    def pick_pair(self, run_seed: int, session_id: str, lang: str) -> tuple[Speaker, Speaker]:
        """(user, assistant) for a session: seeded, distinct, both able to speak ``lang``."""
        users = [s for s in self.users if lang in s.lang]
        assistants = [s for s in self.assistants if lang in s.lang]
        if not users or not assistants:
            raise RejectError("no_speaker_for_lang", f"library has no user/assistant voice for {lang!r}")
        rng = seeded_rng(run_seed, session_id, STAGE)
        assistant = assistants[int(rng.integers(len(assistants)))]
        # Two voices must be told apart by ear: never the same id, and for the embedded engine
        # never the same voice variant (rate/pitch alone are too close).
        candidates = [u for u in users if u.id != assistant.id and _timbre(u) != _timbre(assistant)]
        if not candidates:
            candidates = [u for u in users if u.id != assistant.id]
        if not candidates:
            raise RejectError("no_speaker_for_lang", "library has only one voice")
        user = candidates[int(rng.integers(len(candidates)))]
        return user, assistant


def _timbre(s: Speaker) -> tuple[str, str] | str:
    if s.backend == "espeak":
        return (s.backend, str(s.engine_params.get("variant", "")))
    return s.reference_audio or s.id


def load_library(path: str | Path | None = None) -> SpeakerLibrary:
    """Load a manifest (default: the embedded espeak library)."""
    p = Path(path) if path is not None else EMBEDDED_PATH
    data = json.loads(p.read_text(encoding="utf-8"))
    speakers = tuple(Speaker.model_validate(s) for s in data["speakers"])
    ids = [s.id for s in speakers]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate speaker ids in {p}")
    return SpeakerLibrary(speakers=speakers, root=p.parent)


# ---- the embedded library -------------------------------------------------------------------

ASSISTANT_VOICES: tuple[tuple[str, str, str, str, int, int, int], ...] = (
    # (display name, variant, accent voice, gender, rate, pitch, range)
    ("Aria", "f1", "en-us", "female", 170, 58, 55),
    ("Bella", "f2", "en", "female", 165, 62, 60),
    ("Clara", "f3", "en-us", "female", 175, 55, 50),
    ("Daisy", "f4", "en-gb-x-rp", "female", 168, 60, 65),
    ("Elena", "f5", "en-us", "female", 172, 52, 45),
    ("Fiona", "Annie", "en-gb-scotland", "female", 160, 56, 55),
    ("Grace", "belinda", "en-us", "female", 170, 54, 60),
    ("Hazel", "linda", "en", "female", 165, 60, 50),
    ("Iris", "steph", "en-us", "female", 175, 57, 58),
    ("Adam", "m1", "en-us", "male", 170, 45, 50),
    ("Brian", "m2", "en", "male", 165, 40, 45),
    ("Caleb", "m3", "en-us", "male", 175, 48, 55),
    ("David", "m4", "en-gb-x-rp", "male", 168, 42, 50),
    ("Ethan", "m5", "en-us", "male", 172, 38, 40),
    ("Felix", "m6", "en", "male", 160, 46, 60),
    ("George", "m7", "en-us", "male", 170, 44, 50),
    ("Henry", "m8", "en-gb-scotland", "male", 165, 40, 55),
    ("Ivan", "adam", "en-us", "male", 170, 47, 50),
)
# Variants for users: everything espeak-ng ships except the deliberately distorted ones, and
# "rob", which crashes libespeak-ng 1.51 (segfault in espeak_Synth) when it reads pinyin after
# another voice spoke English in the same process.
USER_VARIANTS: tuple[str, ...] = (
    "Alex", "Alicia", "Andrea", "Andy", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen",
    "RicishayMax", "Storm", "Tweaky", "anika", "announcer", "antonio", "aunty", "benjamin",
    "boris", "caleb", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5",
    "fast", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john",
    "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "linda", "m1", "m2", "m3", "m4",
    "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul",
    "pedro", "quincy", "robert", "sandro", "shelby", "steph2", "steph3", "travis",
    "victor", "zac",
)  # fmt: skip
USER_ACCENTS: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
N_USERS = 120


def _gender(variant: str) -> str:
    if variant.startswith("f") and variant[1:].isdigit():
        return "female"
    if variant.startswith("m") and variant[1:].isdigit():
        return "male"
    return "unknown"


def build_embedded() -> dict:
    """The embedded manifest, a pure function of the constants above."""
    speakers: list[dict] = []
    for i, (name, variant, accent, gender, rate, pitch, rng_) in enumerate(ASSISTANT_VOICES):
        speakers.append(
            Speaker(
                id=f"asst_{i:02d}",
                role="assistant",
                lang=("zh", "en"),
                gender=gender,  # type: ignore[arg-type]
                display_name=name,
                backend="espeak",
                engine_params={
                    "variant": variant,
                    "en_voice": accent,
                    "rate": rate,
                    "pitch": pitch,
                    "range": rng_,
                },
            ).model_dump(mode="json")
        )
    rng = seeded_rng(0, "embedded_users", STAGE)
    for i in range(N_USERS):
        # Cycle through the variants so every user differs from its neighbours in timbre; accent,
        # rate, pitch and range vary on top of that.
        variant = USER_VARIANTS[i % len(USER_VARIANTS)]
        accent = USER_ACCENTS[(i // len(USER_VARIANTS) + i) % len(USER_ACCENTS)]
        speakers.append(
            Speaker(
                id=f"user_{i:03d}",
                role="user",
                lang=("zh", "en"),
                gender=_gender(variant),  # type: ignore[arg-type]
                display_name=f"User {i:03d} ({variant}, {accent})",
                backend="espeak",
                engine_params={
                    "variant": variant,
                    "en_voice": accent,
                    "rate": int(rng.integers(135, 211)),
                    "pitch": int(rng.integers(25, 81)),
                    "range": int(rng.integers(20, 91)),
                },
            ).model_dump(mode="json")
        )
    return {"schema_version": "1.0", "speakers": speakers}


if __name__ == "__main__":
    EMBEDDED_PATH.write_text(
        json.dumps(build_embedded(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {EMBEDDED_PATH}")
