"""moshi-finetune export (SPEC section 16) and a reader for its documented dataset format.

kyutai-labs/moshi-finetune trains on stereo wav files: channel 0 (left) is the audio the model
speaks, channel 1 (right) the user. Next to each ``X.wav`` lies ``X.json`` with the word
timestamps ``{"alignments": [[word, [start_s, end_s], speaker], ...]}`` in seconds from the start
of the file, sorted by start; the model's own words carry the speaker ``SPEAKER_MAIN``. A jsonl
manifest lists ``{"path": ..., "duration": seconds}`` per file.

Input: ``DecodedSample`` (session clock, 16 kHz mono tracks). Output under ``OUT``::

    OUT/manifest.jsonl
    OUT/data_stereo/<key>.wav     24 kHz, 2 channels, PCM 16 (0 = assistant, 1 = user)
    OUT/data_stereo/<key>.json    {"alignments": [...]}  assistant SPEAKER_MAIN, user SPEAKER_OTHER
    OUT/rejects.ndjson            not ``*jsonl``: moshi-finetune reads every ``*jsonl`` under a
                                  ``train_data`` folder as a manifest, so the manifest is the only one

With ``min_duration_s`` consecutive sessions (shard order) are packed into one file of at least
that duration (the last one may be shorter), ``gap_s`` of silence between them, named
``pack_000000.wav``; its ``.json`` also lists the ``sessions`` (key, start_s, duration_s) it holds.

Word times come from the timeline (integer samples at the session rate) divided by that rate, so
resampling the audio does not move them. Words keep the punctuation of the utterance text around
them (``"Okay,"``, ``"的。"``), as moshi's own transcripts do. An interrupted assistant utterance
contributes only the words heard before the cut. Sessions in which the assistant says no word
are skipped (summary ``skipped``, code ``assistant_silent``): they would teach the model to keep
quiet. Reject codes: none of its own (see ``export.py``).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from duplexloom.schemas.sample import SampleMeta
from duplexloom.schemas.units import samples_to_seconds
from duplexloom.schemas.utterance import TimedSpan, Utterance
from duplexloom.timeline.sample_codec import DecodedSample

from .export import SkipSample, heard_words, resample

MOSHI_SAMPLE_RATE = 24_000
SPEAKER_MAIN = "SPEAKER_MAIN"  # the voice the model learns to produce: our assistant
SPEAKER_OTHER = "SPEAKER_OTHER"  # everybody else: our user
ASSISTANT_CHANNEL = 0
USER_CHANNEL = 1
AUDIO_DIR = "data_stereo"
MANIFEST = "manifest.jsonl"
REJECTS_FILE = "rejects.ndjson"
TIME_DECIMALS = 6  # microseconds: far below one sample at 24 kHz, keeps the JSON short

Alignment = tuple[str, tuple[float, float], str]


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def punctuated(utt: Utterance, words: list[TimedSpan]) -> list[str]:
    """Each word's text with the punctuation around it in ``utt.text``: the punctuation right
    after it, and any opening punctuation right before it, with the text's casing. Words are found
    in order in the text (case-insensitively); a word that is not found keeps its own text."""
    text, cursor, out = utt.text, 0, []
    folded = text.lower() if len(text.lower()) == len(text) else text  # indexes must stay valid
    for w in words:
        i = folded.find(w.text.lower() if folded is not text else w.text, cursor)
        if i < 0 or w.text == "":
            out.append(w.text)
            continue
        lead_start = i
        while lead_start > cursor and _is_punct(text[lead_start - 1]):
            lead_start -= 1
        end = i + len(w.text)
        while end < len(text) and _is_punct(text[end]):
            end += 1
        out.append(text[lead_start:end])
        cursor = end
    return out


def moshi_alignments(meta: SampleMeta, include_user: bool = True, offset_s: float = 0.0) -> list[Alignment]:
    """``(word, (start_s, end_s), speaker)`` of every heard word, sorted by start (moshi-finetune
    looks words up by bisection, so the order matters); ``offset_s`` is added to every time."""
    sr = meta.timeline.sample_rate
    out: list[Alignment] = []
    for utt in meta.timeline.utterances:
        if utt.speaker == "user" and not include_user:
            continue
        speaker = SPEAKER_MAIN if utt.speaker == "assistant" else SPEAKER_OTHER
        words = heard_words(utt)
        for w, text in zip(words, punctuated(utt, words), strict=True):
            start_s = round(offset_s + samples_to_seconds(w.start_samples, sr), TIME_DECIMALS)
            end_s = round(offset_s + samples_to_seconds(w.end_samples, sr), TIME_DECIMALS)
            out.append((text, (start_s, end_s), speaker))
    out.sort(key=lambda a: (a[1][0], a[1][1], a[2] != SPEAKER_MAIN))
    return out


def moshi_stereo(sample: DecodedSample, sample_rate: int = MOSHI_SAMPLE_RATE) -> np.ndarray:
    """``(n, 2)`` float32 at ``sample_rate``: assistant on channel 0, user on channel 1."""
    sr = sample.meta.timeline.sample_rate
    assistant = resample(sample.assistant_audio, sr, sample_rate)
    user = resample(sample.user_audio, sr, sample_rate)
    stereo = np.zeros((max(len(assistant), len(user)), 2), dtype=np.float32)
    stereo[: len(assistant), ASSISTANT_CHANNEL] = assistant
    stereo[: len(user), USER_CHANNEL] = user
    return np.clip(stereo, -1.0, 1.0)


def assistant_speaks(meta: SampleMeta) -> bool:
    return any(heard_words(u) for u in meta.timeline.utterances if u.speaker == "assistant")


@dataclass
class _Pack:
    """Sessions waiting to be written as one file."""

    audio: list[np.ndarray] = field(default_factory=list)
    alignments: list[Alignment] = field(default_factory=list)
    sessions: list[dict[str, object]] = field(default_factory=list)
    n_samples: int = 0


class MoshiExporter:
    """Writes one stereo wav + alignments JSON per sample (or per pack of samples with
    ``min_duration_s``); ``close`` writes the manifest.

    ``relative_paths``: manifest paths relative to ``OUT`` (run the trainer from ``OUT``) instead
    of absolute ones (moshi-finetune opens the path, and the ``.json`` beside it, as given).
    """

    rejects_file = REJECTS_FILE

    def __init__(
        self,
        out_dir: Path,
        *,
        sample_rate: int = MOSHI_SAMPLE_RATE,
        relative_paths: bool = False,
        include_user_words: bool = True,
        min_duration_s: float = 0.0,
        gap_s: float = 1.0,
    ) -> None:
        if min_duration_s < 0 or gap_s < 0:
            raise ValueError(f"min_duration_s ({min_duration_s}) and gap_s ({gap_s}) must be >= 0")
        self.out_dir = Path(out_dir)
        self.audio_dir = self.out_dir / AUDIO_DIR
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.relative_paths = relative_paths
        self.include_user_words = include_user_words
        self.min_duration_s = min_duration_s
        self.gap_samples = int(round(gap_s * sample_rate))
        self.entries: list[dict[str, object]] = []
        self.pack = _Pack()
        self.n_packs = 0

    def add(self, sample: DecodedSample) -> dict[str, float]:
        if not assistant_speaks(sample.meta):
            raise SkipSample("assistant_silent", f"{sample.key}: the assistant says no word")
        stereo = moshi_stereo(sample, self.sample_rate)
        duration_s = len(stereo) / self.sample_rate
        if self.min_duration_s <= 0:
            alignments = moshi_alignments(sample.meta, self.include_user_words)
            self._write(sample.key, [stereo], alignments, None)
            return {"duration_s": duration_s}
        pack = self.pack
        if pack.audio:
            pack.audio.append(np.zeros((self.gap_samples, 2), dtype=np.float32))
            pack.n_samples += self.gap_samples
        offset_s = pack.n_samples / self.sample_rate
        pack.alignments += moshi_alignments(sample.meta, self.include_user_words, offset_s)
        pack.sessions.append(
            {"key": sample.key, "start_s": round(offset_s, TIME_DECIMALS), "duration_s": duration_s}
        )
        pack.audio.append(stereo)
        pack.n_samples += len(stereo)
        if pack.n_samples / self.sample_rate >= self.min_duration_s:
            self._flush()
        return {"duration_s": duration_s}

    def _flush(self) -> None:
        if self.pack.audio:
            name = f"pack_{self.n_packs:06d}"
            self._write(name, self.pack.audio, self.pack.alignments, self.pack.sessions)
            self.n_packs += 1
        self.pack = _Pack()

    def _write(
        self,
        name: str,
        parts: list[np.ndarray],
        alignments: list[Alignment],
        sessions: list[dict[str, object]] | None,
    ) -> None:
        stereo = np.concatenate(parts) if len(parts) > 1 else parts[0]
        wav_path = self.audio_dir / f"{name}.wav"
        sf.write(wav_path, stereo, self.sample_rate, format="WAV", subtype="PCM_16")
        alignments = sorted(alignments, key=lambda a: (a[1][0], a[1][1], a[2] != SPEAKER_MAIN))
        doc: dict[str, object] = {"alignments": [[word, [s, e], spk] for word, (s, e), spk in alignments]}
        if sessions is not None:
            doc["sessions"] = sessions
        wav_path.with_suffix(".json").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
        path = wav_path.relative_to(self.out_dir) if self.relative_paths else wav_path.resolve()
        self.entries.append({"path": str(path), "duration": len(stereo) / self.sample_rate})

    def close(self) -> list[Path]:
        self._flush()
        manifest = self.out_dir / MANIFEST
        with manifest.open("w", encoding="utf-8") as f:
            for entry in self.entries:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return [manifest]


# ---------------------------------------------------------------------------------------------
# Reader, written to moshi-finetune's documented format (not to our writer), for round trips


@dataclass
class MoshiItem:
    path: Path
    duration_s: float  # as listed in the manifest
    sample_rate: int
    audio: np.ndarray  # (n, 2) float32: channel 0 = main speaker, channel 1 = other
    alignments: list[Alignment]

    @property
    def main_words(self) -> list[Alignment]:
        return [a for a in self.alignments if a[2] == SPEAKER_MAIN]


def read_moshi_manifest(manifest: str | Path, *, tolerance_s: float = 1e-3) -> Iterator[MoshiItem]:
    """Yield every file of a moshi-finetune dataset, checking the documented format.

    Relative manifest paths are resolved against the manifest's folder. Raises ``ValueError`` on
    a file that does not follow the format (mono audio, duration mismatch, malformed or unsorted
    alignments, words outside the file).
    """
    manifest = Path(manifest)
    for line_no, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if set(entry) != {"path", "duration"}:
            raise ValueError(f"{manifest}:{line_no}: keys {sorted(entry)} != ['duration', 'path']")
        path = Path(entry["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        if audio.shape[1] != 2:
            raise ValueError(f"{path}: {audio.shape[1]} channel(s), moshi-finetune needs stereo")
        if abs(len(audio) / sr - float(entry["duration"])) > tolerance_s:
            raise ValueError(f"{path}: manifest duration {entry['duration']} != {len(audio) / sr}")
        doc = json.loads(Path(os.path.splitext(path)[0] + ".json").read_text(encoding="utf-8"))
        alignments = [_parse_alignment(path, a, len(audio) / sr, tolerance_s) for a in doc["alignments"]]
        starts = [a[1][0] for a in alignments]
        if starts != sorted(starts):
            raise ValueError(f"{path}: alignments are not sorted by start time")
        yield MoshiItem(path, float(entry["duration"]), sr, audio, alignments)


def _parse_alignment(path: Path, item: object, duration_s: float, tolerance_s: float) -> Alignment:
    if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)):
        raise ValueError(f"{path}: alignment {item!r} is not [word, [start, end], speaker]")
    word, span, speaker = item
    if not (isinstance(span, list) and len(span) == 2 and isinstance(speaker, str)):
        raise ValueError(f"{path}: alignment {item!r} is not [word, [start, end], speaker]")
    start_s, end_s = float(span[0]), float(span[1])
    if not (0.0 <= start_s <= end_s <= duration_s + tolerance_s):
        raise ValueError(f"{path}: word {word!r} at [{start_s}, {end_s}] outside [0, {duration_s}]")
    return word, (start_s, end_s), speaker
