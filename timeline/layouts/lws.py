"""Listen-Write-Speak units (SPEC section 16): the session cut into 1 s units.

Input: a :class:`Timeline`, a tokenizer, optionally the full written reply text. Output: one dict per
unit: ``unit``, ``start_s``, ``end_s``, ``kind`` (``listen`` / ``speak``), ``phase`` (listening units:
``early`` = user not yet speaking, ``effective`` = user speaking, ``post`` = user done and the
assistant not yet speaking; ``None`` for speaking units), ``spoken`` / ``written`` / ``listen_text``,
``turn_eos``, ``text`` (the unit rendered with its tokens, no spaces added around markers) and
``tokens``.

* listening unit: ``<unit><|lc|>`` + the ``think`` texts timed inside the unit (per-second causal
  cognition, SPEC section 10) + ``<|/lc|></unit>``;
* speaking unit (any assistant audio in the unit): ``<unit><|spk|>`` + the assistant words whose audio
  starts in the unit + ``<|eos|><|rc|>`` + this unit's share of the written reply + ``<|/rc|>``, then
  ``<|turn_eos|>`` on the last unit of an assistant turn, and ``</unit>``.

The written reply of an assistant turn is its text, except that ``reply_text`` (the cognition
family's full written answer) replaces the first turn's; it is spread left to right over the turn's
speaking units, at most ``written_budget`` tokens per unit.

Reject codes: ``reply_outruns_speech`` (the written reply needs more units than the turn speaks),
``marker_in_text``; and ``ta4``'s audio/cut rules apply (interrupted turns keep words started before
the cut).
"""

from __future__ import annotations

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import find_markers

from ..ta4 import audio_span, join_words, spoken_text
from ..tokenizer import Tokenizer

LC_BEGIN, LC_END = "<|lc|>", "<|/lc|>"
SPK, EOS, RC_BEGIN, RC_END, TURN_EOS = "<|spk|>", "<|eos|>", "<|rc|>", "<|/rc|>", "<|turn_eos|>"
UNIT_BEGIN, UNIT_END = "<unit>", "</unit>"


def render_lws(
    timeline: Timeline,
    tokenizer: Tokenizer,
    reply_text: str | None = None,
    *,
    unit_ms: int = 1000,
    written_budget: int = 10,
) -> list[dict]:
    sr = timeline.sample_rate
    unit = sr * unit_ms // 1000
    n_units = -(-timeline.duration_samples // unit) if timeline.duration_samples else 0
    if reply_text is not None and find_markers(reply_text):
        raise RejectError("marker_in_text", f"reply_text: contains {sorted(set(find_markers(reply_text)))}")

    assistant = sorted(
        (u for u in timeline.utterances if u.speaker == "assistant"),
        key=lambda u: (u.audio_start_samples, u.id),
    )
    speak_owner: dict[int, int] = {}  # unit -> index of the assistant turn speaking in it
    spoken_words: dict[int, list[tuple[str, str]]] = {}
    written: dict[int, str] = {}
    last_unit_of_turn: set[int] = set()
    for k, utt in enumerate(assistant):
        start, end = audio_span(utt)
        if end <= start:
            continue
        units = list(range(start // unit, min((end - 1) // unit, n_units - 1) + 1))
        for x in units:
            speak_owner[x] = k
        last_unit_of_turn.add(units[-1])
        for w in utt.words:
            if utt.cut_samples is not None and w.start_samples >= utt.cut_samples:
                continue
            spoken_words.setdefault(w.start_samples // unit, []).append((utt.lang, w.text))
        reply = reply_text if (k == 0 and reply_text is not None) else spoken_text(utt)
        pieces = tokenizer.pieces(reply)
        need = -(-len(pieces) // written_budget)
        if need > len(units):
            raise RejectError(
                "reply_outruns_speech",
                f"utterance {utt.id!r}: written reply of {len(pieces)} tokens needs {need} units at "
                f"{written_budget} per unit, the turn speaks in {len(units)}",
            )
        for i, x in enumerate(units):
            written[x] = "".join(pieces[i * written_budget : (i + 1) * written_budget])

    user_words = sorted(
        (w.start_samples, w.end_samples) for u in timeline.utterances if u.speaker == "user" for w in u.words
    )
    thinks = sorted((a.offset_samples, a.id, a.text or "") for a in timeline.actions if a.name == "think")

    out = []
    for x in range(n_units):
        u0, u1 = x * unit, (x + 1) * unit
        entry: dict = {"unit": x, "start_s": u0 / sr, "end_s": min(u1, timeline.duration_samples) / sr}
        if x in speak_owner:
            lang = assistant[speak_owner[x]].lang
            words = spoken_words.get(x, [])
            spoken = join_words([w for _, w in words], lang)
            eos = x in last_unit_of_turn
            text = (
                UNIT_BEGIN
                + SPK
                + spoken
                + EOS
                + RC_BEGIN
                + written.get(x, "")
                + RC_END
                + (TURN_EOS if eos else "")
                + UNIT_END
            )
            entry |= {
                "kind": "speak",
                "phase": None,
                "spoken": spoken,
                "written": written.get(x, ""),
                "listen_text": None,
                "turn_eos": eos,
            }
        else:
            speaking = any(s < u1 and e > u0 for s, e in user_words)
            last_user_end = max((e for s, e in user_words if e <= u0), default=-1)
            last_asst_end = max((audio_span(u)[1] for u in assistant if audio_span(u)[1] <= u0), default=-1)
            phase = "effective" if speaking else ("post" if last_user_end > last_asst_end else "early")
            listen = "".join(t for off, _, t in thinks if u0 <= off < u1)
            text = UNIT_BEGIN + LC_BEGIN + listen + LC_END + UNIT_END
            entry |= {
                "kind": "listen",
                "phase": phase,
                "spoken": None,
                "written": None,
                "listen_text": listen,
                "turn_eos": False,
            }
        entry["text"] = text
        entry["tokens"] = tokenizer.count(text)
        out.append(entry)
    return out
