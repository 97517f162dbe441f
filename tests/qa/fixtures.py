"""Real shards for the QA tests: espeak-ng speech for both speakers on a two-track timeline, with
tool calls, labels, ASR and think actions, serialized to TA4 + action-FIFO chunks and written as
WebDataset tars with the real sample codec.

Serialization is the core's (``duplexloom.timeline.serialize``), so the QA code is tested against
the shards the pipeline writes.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duplexloom.schemas import (
    ActionObject,
    SampleMeta,
    TimedSpan,
    Timeline,
    Utterance,
)
from duplexloom.schemas.sample import TokenizerInfo
from duplexloom.schemas.units import chunk_samples
from duplexloom.timeline.sample_codec import encode_sample, shard_tar_bytes
from duplexloom.timeline.serialize import render_trace, serialize
from duplexloom.timeline.tokenizer import load_tokenizer
from duplexloom.tts_adapters import get_tts, load_library

SR = 16_000
CLEN = chunk_samples(SR)


@dataclass
class Line:
    speaker: str  # "user" / "assistant"
    text: str
    start_s: float
    kind: str = "turn"
    cut_after_words: int | None = None  # interrupted assistant utterance: keep this many words


def _synth(lines: list[Line], seed_key: str) -> tuple[list[Utterance], np.ndarray, np.ndarray, dict]:
    tts = get_tts("espeak", sample_rate=SR)
    user_spk, asst_spk = load_library().pick_pair(0, seed_key, "en")
    utts: list[Utterance] = []
    placed: list[tuple[str, int, np.ndarray]] = []
    for i, ln in enumerate(lines):
        spk = user_spk if ln.speaker == "user" else asst_spk
        res = tts.synthesize([ln.text], spk, "en")[0]
        audio = res.audio.astype(np.float32)
        starts = res.word_starts_samples or [(ln.text, 0)]
        # A word ends where the next begins; the last ends where the voice stops (trailing silence cut).
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        voice_end = int(loud[-1]) + 1 if loud.size else len(audio)
        off = int(round(ln.start_s * SR))
        words = []
        for j, (w, st) in enumerate(starts):
            en = starts[j + 1][1] if j + 1 < len(starts) else max(voice_end, st + 1)
            words.append(TimedSpan(text=w, start_samples=off + st, end_samples=off + en))
        end = off + voice_end
        cut = None
        if ln.cut_after_words is not None:
            cut = words[ln.cut_after_words].start_samples
            words = words[: ln.cut_after_words]
            audio = audio[: cut - off]
            end = cut
        utts.append(
            Utterance(
                id=f"u{i}",
                speaker=ln.speaker,
                speaker_id=spk.id,
                lang="en",
                text=" ".join(w.text for w in words) if cut else ln.text,
                kind=ln.kind,
                turn_index=i,
                words=tuple(words),
                audio_start_samples=off,
                audio_end_samples=end,
                cut_samples=cut,
            )
        )
        placed.append((ln.speaker, off, audio[: end - off]))
    return utts, placed, {"user": user_spk, "assistant": asst_spk}


def _word_end(utt: Utterance, word: str) -> int:
    for w in utt.words:
        if w.text.strip(",.?!").lower() == word:
            return w.end_samples
    raise KeyError(word)


def build_session(name: str) -> tuple[str, dict[str, bytes]]:
    """One sample's members. ``name`` picks the scenario: ``toolcall``, ``interrupt``, ``dialogue``."""
    tok = load_tokenizer(None)
    if name == "toolcall":
        family = "toolcall"
        lines = [
            Line("user", "Please turn the heat up and play some jazz", 0.4),
            Line("assistant", "Sure, warming the cabin and starting some jazz for you now", 3.6),
        ]
    elif name == "interrupt":
        family = "interrupt"
        lines = [
            Line("user", "Tell me about the weather this weekend", 0.3),
            Line(
                "assistant",
                "This weekend looks sunny on Saturday with a light breeze and clouds on Sunday",
                3.2,
                cut_after_words=9,
            ),
            Line("user", "mm-hmm", 4.4, kind="backchannel"),
            Line("user", "Wait, will it rain on Sunday?", 6.2, kind="interrupt"),
            Line("assistant", "Only a small chance of rain", 9.0),
        ]
    else:
        family = "dialogue"
        lines = [
            Line("user", "How far is the airport from here?", 0.5),
            Line("assistant", "About twenty minutes by car", 3.4),
        ]
    key = f"{name}_0000"
    utts, placed, speakers = _synth(lines, key)
    actions: list[ActionObject] = []
    u0 = utts[0]
    if name == "toolcall":
        actions += [
            ActionObject(
                id="a1",
                name="increase_car_setting",
                offset_samples=_word_end(u0, "up"),
                planning="Raise the cabin heat.",
                parameters={"setting": "AC_temperature"},
                anchor="turn the heat up",
                anchor_utterance_id="u0",
                provenance="fixture",
            ),
            ActionObject(
                id="a2",
                name="play_media",
                offset_samples=_word_end(u0, "jazz"),
                planning="Play jazz.",
                parameters={"media_type": "playlist", "title": "jazz"},
                anchor="play some jazz",
                anchor_utterance_id="u0",
                provenance="fixture",
            ),
            ActionObject(
                id="r1",
                name="response",
                offset_samples=u0.audio_end_samples - 1,
                text="User finished speaking",
                anchor_utterance_id="u0",
                provenance="rule",
            ),
        ]
    elif name == "interrupt":
        actions += [
            ActionObject(
                id="r1",
                name="response",
                offset_samples=u0.audio_end_samples - 1,
                text="User finished speaking",
                anchor_utterance_id="u0",
                provenance="rule",
            ),
            ActionObject(
                id="b1",
                name="backchannel",
                offset_samples=utts[2].audio_end_samples - 1,
                text="Light feedback",
                anchor_utterance_id="u2",
                provenance="rule",
            ),
            ActionObject(
                id="i1",
                name="interrupt",
                offset_samples=_word_end(utts[3], "rain"),
                text="User barged in",
                anchor="will it rain",
                anchor_utterance_id="u3",
                provenance="rule",
            ),
            ActionObject(
                id="t1",
                name="think",
                offset_samples=_word_end(utts[3], "sunday"),
                text="Sunday rain chance?",
                provenance="fixture",
            ),
            ActionObject(
                id="r2",
                name="response",
                offset_samples=utts[3].audio_end_samples - 1,
                text="User finished speaking",
                anchor_utterance_id="u3",
                provenance="rule",
            ),
        ]
    else:
        actions += [
            ActionObject(
                id="r1",
                name="response",
                offset_samples=u0.audio_end_samples - 1,
                text="User finished speaking",
                anchor_utterance_id="u0",
                provenance="rule",
            ),
        ]
    end = max(max(u.audio_end_samples for u in utts), max(a.offset_samples for a in actions))
    duration = end + 4 * SR  # room for the FIFO to drain
    tl = Timeline(
        session_id=key,
        sample_rate=SR,
        duration_samples=duration,
        family=family,
        lang="en",
        utterances=tuple(utts),
        actions=tuple(actions),
    )
    # Both transcript sides, so the report shows user and assistant ASR on the action channel.
    chunks = serialize(tl, tokenizer=tok, asr_sides=("user", "assistant"))
    trace = render_trace(chunks)
    padded = len(chunks) * CLEN
    tracks = {"user": np.zeros(padded, np.float32), "assistant": np.zeros(padded, np.float32)}
    for spk, off, audio in placed:
        tracks[spk][off : off + len(audio)] += audio
    meta = SampleMeta(
        key=key,
        family=family,
        lang="en",
        system_prompt="You are a voice assistant.",
        speakers=speakers,
        tokenizer=TokenizerInfo(name="builtin", kind="builtin"),
        run_seed=0,
        seed_id=f"seed-{name}",
        provenance={"fixture": "tests/qa/fixtures.py"},
        timeline=tl,
    )
    return key, encode_sample(meta, tracks["user"], tracks["assistant"], chunks, trace)


SCENARIOS = ("toolcall", "interrupt", "dialogue")


def write_dataset(out: Path) -> Path:
    """An output dir like the Beam job's: ``shards/000000.tar`` (+ ``000001.tar``), summary, rejects."""
    samples = [build_session(n) for n in SCENARIOS]
    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    (shards / "000000.tar").write_bytes(shard_tar_bytes(samples[:2]))
    (shards / "000001.tar").write_bytes(shard_tar_bytes(samples[2:]))
    (out / "rejects.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {
                    "record_id": "seed-17",
                    "stage": "serialize",
                    "code": "text_outruns_audio",
                    "detail": "12 tokens, 9 chunks",
                },
                {"record_id": "seed-23", "stage": "annotate", "code": "invalid_json", "detail": "LLM output"},
                {
                    "record_id": "seed-31",
                    "stage": "serialize",
                    "code": "text_outruns_audio",
                    "detail": "8 tokens, 7 chunks",
                },
            )
        )
        + "\n"
    )
    (out / "summary.json").write_text(json.dumps({"counts": {"seeds": 6, "samples": 3, "rejects": 3}}))
    return shards


# ---- planted defects: each edits one member of one sample in a copy of a good shard ----------


def read_tar(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]


def write_tar(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
