"""Listen-Write-Speak units (SPEC section 16): the session cut into 1 s units.

Input: a :class:`Timeline`, a tokenizer, optionally the full written replies. Output: one dict per
unit: ``unit``, ``start_s``, ``end_s``, ``kind`` (``listen`` / ``speak``), ``phase`` (listening
units, see below; ``None`` for speaking units), ``spoken`` / ``written`` / ``listen_text``,
``turn_eos``, ``text`` (the unit rendered with its tokens, no spaces added around markers) and
``tokens``.

* speaking unit: a unit in which the assistant has spoken text, i.e. a word of an assistant turn
  whose audio starts in the unit (Listen-Write-Speak App. B.2): ``<unit><|spk|>`` + those words +
  (on the turn's last unit with spoken text) ``<|turn_eos|>`` + ``<|eos|><|rc|>`` + the unit's share
  of the written reply + ``<|/rc|></unit>``. ``<|turn_eos|>`` sits inside the speak segment.
* listening unit (every other unit): ``<unit><|lc|>`` + the texts of the cognition ``think`` actions
  timed in the unit + ``<|/lc|></unit>``. A note belongs to unit t when its offset lies in
  ``(t·1 s, (t+1)·1 s]`` (several are joined by a space): a note timed at the end of second t (what was understood from the words
  heard during it) is second t's; chain-node think actions (provenance ``chain:...``) stay off
  this channel. Its phase, judged at the unit's end (when the unit is written):
  ``effective`` while a user turn is under way (the user is speaking, or pausing inside the turn);
  ``post`` once a user turn has ended and the assistant has not spoken since (the wait before the
  reply); ``early`` otherwise (the user has not started).

Speech and writing: the spoken stream is what the assistant says (its aligned words; for the
cognition family the short ``voice_response``); the written channel is the full reply: the
``written`` mapping (assistant turn index -> text), else ``reply_text`` for the first assistant
turn, else the spoken text. It is spread left to right over the turn's speaking units, at least
``written_budget`` tokens per unit and more when the answer is long: writing is not bound to the
pace of speech, so a long written answer is never a reject.

Reject codes: ``marker_in_text``; and ``ta4``'s audio/cut rules apply (interrupted turns keep words
started before the cut).
"""

from __future__ import annotations

from collections.abc import Mapping

from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.tokens import find_markers

from ..cognition import CHAIN_PROV, THINK
from ..ta4 import audio_span, join_words, spoken_text
from ..tokenizer import Tokenizer

LC_BEGIN, LC_END = "<|lc|>", "<|/lc|>"
SPK, EOS, RC_BEGIN, RC_END, TURN_EOS = "<|spk|>", "<|eos|>", "<|rc|>", "<|/rc|>", "<|turn_eos|>"
UNIT_BEGIN, UNIT_END = "<unit>", "</unit>"
# User utterances that hold the floor (a backchannel does not).
_FLOOR_KINDS = ("turn", "filler", "interrupt", "request")
# Between two notes of one listening unit (the user spoke faster than the annotator estimated).
NOTE_SEP = " "


def _user_turn_spans(timeline: Timeline) -> list[tuple[int, int]]:
    """[start, end) of each user turn: its floor utterances together, pauses inside included."""
    spans: dict[object, list[int]] = {}
    for u in timeline.utterances:
        if u.speaker != "user" or u.kind not in _FLOOR_KINDS or not u.words:
            continue
        key = (u.turn_index, "turn") if u.kind in ("turn", "filler") else (u.id, u.kind)
        s, e = u.words[0].start_samples, u.words[-1].end_samples
        if key in spans:
            spans[key] = [min(spans[key][0], s), max(spans[key][1], e)]
        else:
            spans[key] = [s, e]
    return sorted((s, e) for s, e in spans.values())


def render_lws(
    timeline: Timeline,
    tokenizer: Tokenizer,
    reply_text: str | None = None,
    *,
    written: Mapping[int, str] | None = None,
    unit_ms: int = 1000,
    written_budget: int = 10,
) -> list[dict]:
    sr = timeline.sample_rate
    unit = sr * unit_ms // 1000
    n_units = -(-timeline.duration_samples // unit) if timeline.duration_samples else 0
    for what, text in [
        ("reply_text", reply_text),
        *((f"written[{k}]", v) for k, v in (written or {}).items()),
    ]:
        if text is not None and find_markers(text):
            raise RejectError("marker_in_text", f"{what}: contains {sorted(set(find_markers(text)))}")

    assistant = sorted(
        (u for u in timeline.utterances if u.speaker == "assistant"),
        key=lambda u: (u.audio_start_samples, u.id),
    )
    spoken_words: dict[int, list[str]] = {}
    speak_lang: dict[int, str] = {}
    written_of: dict[int, str] = {}
    turn_eos_units: set[int] = set()
    for k, utt in enumerate(assistant):
        start, end = audio_span(utt)
        if end <= start:
            continue
        mine: list[int] = []
        for w in utt.words:
            if utt.cut_samples is not None and w.start_samples >= utt.cut_samples:
                continue
            x = min(w.start_samples // unit, n_units - 1)
            spoken_words.setdefault(x, []).append(w.text)
            speak_lang[x] = utt.lang
            if not mine or mine[-1] != x:
                mine.append(x)
        if not mine:
            continue
        turn_eos_units.add(mine[-1])
        if written and utt.turn_index in written:
            reply = written[utt.turn_index]
        elif k == 0 and reply_text is not None:
            reply = reply_text
        else:
            reply = spoken_text(utt)
        pieces = tokenizer.pieces(reply)
        per_unit = max(written_budget, -(-len(pieces) // len(mine)))
        for i, x in enumerate(mine):
            written_of[x] = written_of.get(x, "") + "".join(pieces[i * per_unit : (i + 1) * per_unit])

    turns = _user_turn_spans(timeline)
    asst_spans = [audio_span(u) for u in assistant]
    thinks = sorted(
        (a.offset_samples, a.id, a.text or "")
        for a in timeline.actions
        if a.name == THINK and not a.provenance.startswith(CHAIN_PROV)
    )
    listen_of: dict[int, str] = {}
    for off, _, text in thinks:
        x = min(max(off - 1, 0) // unit, n_units - 1)
        listen_of[x] = f"{listen_of[x]}{NOTE_SEP}{text}" if x in listen_of else text

    out = []
    for x in range(n_units):
        u0, u1 = x * unit, (x + 1) * unit
        entry: dict = {"unit": x, "start_s": u0 / sr, "end_s": min(u1, timeline.duration_samples) / sr}
        if x in spoken_words:
            spoken = join_words(spoken_words[x], speak_lang[x])
            eos = x in turn_eos_units
            text = (
                UNIT_BEGIN
                + SPK
                + spoken
                + (TURN_EOS if eos else "")
                + EOS
                + RC_BEGIN
                + written_of.get(x, "")
                + RC_END
                + UNIT_END
            )
            entry |= {
                "kind": "speak",
                "phase": None,
                "spoken": spoken,
                "written": written_of.get(x, ""),
                "listen_text": None,
                "turn_eos": eos,
            }
        else:
            if any(s < u1 < e for s, e in turns):
                phase = "effective"
            else:
                ended = [e for s, e in turns if e <= u1]
                last_end = max(ended, default=None)
                spoke_since = last_end is not None and any(s < u1 and e > last_end for s, e in asst_spans)
                phase = "post" if last_end is not None and not spoke_since else "early"
            listen = listen_of.get(x, "")
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
