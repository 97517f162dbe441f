"""The assistant TA4 anchor schedule (SPEC section 6): one text anchor ``T`` per chunk.

Input: a :class:`Timeline`, a tokenizer, a :class:`ChunkGrid`. Output: ``list[str]`` with one
anchor per chunk of the session (``grid.n_chunks(duration)`` entries).

Each assistant utterance's text tokens go one per chunk, left-aligned from the chunk where its audio
starts; ``<tts_pad>`` fills the rest of its audio chunks; ``<vad_silence>`` is everywhere else. An
interrupted utterance (``cut_samples`` set) keeps only the words whose audio started before the cut,
and its audio ends at the cut.

Reject codes: ``text_outruns_audio`` (more tokens than audio chunks), ``assistant_overlap`` (an
utterance starts in a chunk still holding the previous utterance's text).
"""

from __future__ import annotations

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import TTS_PAD, VAD_SILENCE
from duplexloom.schemas.utterance import Utterance

from .clock import ChunkGrid
from .tokenizer import Tokenizer


def join_words(words: list[str], lang: str) -> str:
    """Words back to text: concatenated for Chinese, space-separated otherwise."""
    return "".join(words) if lang == "zh" else " ".join(words)


def spoken_text(utt: Utterance) -> str:
    """The text the assistant actually said: all of it, or the words started before the cut."""
    if utt.cut_samples is None:
        return utt.text
    return join_words([w.text for w in utt.words if w.start_samples < utt.cut_samples], utt.lang)


def audio_span(utt: Utterance) -> tuple[int, int]:
    """``[start, end)`` of the utterance's audio on the session clock, after any cut."""
    end = utt.audio_end_samples
    if utt.cut_samples is not None:
        end = min(end, utt.cut_samples)
    return utt.audio_start_samples, end


def anchor_schedule(timeline: Timeline, tokenizer: Tokenizer, grid: ChunkGrid) -> list[str]:
    n = grid.n_chunks(timeline.duration_samples)
    anchors = [VAD_SILENCE] * n
    text_until = 0  # first chunk not holding an earlier utterance's text token
    assistant = sorted(
        (u for u in timeline.utterances if u.speaker == "assistant"),
        key=lambda u: (u.audio_start_samples, u.id),
    )
    for utt in assistant:
        start, end = audio_span(utt)
        if end <= start:
            continue
        first = grid.chunk_of(start)
        last = min(grid.chunk_of(end - 1), n - 1)
        if first < text_until:
            raise RejectError(
                "assistant_overlap",
                f"utterance {utt.id!r}: starts in chunk {first}, which still holds the previous "
                f"assistant utterance's text (free from chunk {text_until})",
            )
        tokens = tokenizer.pieces(spoken_text(utt))
        n_audio = last - first + 1
        if len(tokens) > n_audio:
            raise RejectError(
                "text_outruns_audio",
                f"utterance {utt.id!r}: {len(tokens)} text tokens but only {n_audio} audio chunks",
                tokens=len(tokens),
                audio_chunks=n_audio,
            )
        for c in range(first, last + 1):
            anchors[c] = TTS_PAD
        anchors[first : first + len(tokens)] = tokens
        text_until = first + len(tokens)
    return anchors
