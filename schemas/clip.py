"""One clip's records on its way TTS -> align -> build: what each of those stages gets and emits.

* :class:`SpeakRequest`: one utterance to synthesize (made by stage ``plan`` from the session plan,
  the TTS stage's input, carried on to the aligner).
* :class:`AudioRef`: where a clip's float32 mono samples are (a file: the run's spool copy, a
  ``.npy``, or the utterance's entry in the TTS cache, a WAV at the session rate), at what
  rate, how many: the one way a clip's audio is referred to across the session shuffle.
* :class:`AlignedClip`: what the align stage hands to the build stage through the session shuffle:
  the clip's audio reference, its word and character spans on the clip's clock (sample 0 = the
  clip's first sample), the aligner's confidence and the quality scores, or the clip's reject.

The spans travel packed (:data:`PackedSpan`, ``(text, start_samples, end_samples, confidence)``):
every aligned clip crosses the session shuffle pickled, and a pydantic ``TimedSpan`` pickles ~10x
slower than its tuple (docs/DECISIONS.md, "Sealed records through the shuffles"); the build stage
turns them into validated ``TimedSpan`` of a :class:`~.utterance.ClipUtterance`, once.
No reject codes.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Field

from .base import Record
from .reject import Reject
from .seed import Lang
from .speaker import Speaker

PackedSpan = tuple[str, int, int, float | None]


class SpeakRequest(Record):
    """One utterance to synthesize: the TTS ModelHandler's example."""

    session_id: str
    utterance_id: str
    role: Literal["user", "assistant"]
    lang: Lang
    text: str
    speaker: Speaker


class AudioRef(Record):
    """Where one clip's float32 mono samples are: ``path`` (a spooled ``.npy``, or a WAV entry
    of the TTS cache), ``sample_rate`` (Hz) and ``n_samples``."""

    path: str
    sample_rate: int = Field(gt=0)
    n_samples: int = Field(ge=0)


class AlignScores(NamedTuple):
    """How well a clip's word spans cover its speech: the share of its speech energy inside some
    word span, the share of words whose span is mostly silence, the aligner's confidence."""

    speech_in_spans: float
    mostly_silent_share: float
    confidence: float


class AlignedClip(Record):
    """An aligned clip (or its reject) between the align and build stages.

    ``audio`` is set on every clip that is not a reject once it has left the ``SpoolClips`` step;
    ``words``/``chars`` are on the clip's clock. ``scores`` is also set on an ``align_poor`` reject
    (None without an aligner)."""

    session_id: str
    utterance_id: str
    lang: Lang
    audio: AudioRef | None = None
    words: tuple[PackedSpan, ...] = ()
    chars: tuple[PackedSpan, ...] = ()
    confidence: float | None = None
    scores: AlignScores | None = None
    reject: Reject | None = None
