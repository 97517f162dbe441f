"""NeMo duplex speech-to-speech export (SPEC section 16): Lhotse cuts.

NeMo's ``DuplexS2SDataset`` (speechlm2 collection) reads Lhotse ``MonoCut``s whose recording is
the user's audio, whose ``custom["target_audio"]`` is a ``Recording`` of the assistant's track,
and whose supervisions are the turns, one per utterance. Defaults follow that dataset and the
``s2s_duplex`` recipe as they are: supervision speakers ``user`` / ``agent`` (the dataset's
default ``input_roles`` / ``output_roles``); the assistant track at 22050 Hz, the recipe's codec
rate, because the dataset resamples only the recording (``cuts.resample(target_sample_rate)``)
and reads ``target_audio`` at its stored rate as if it were the target rate; and Lhotse Shar
(the recipe's ``type: lhotse_shar``) written beside the CutSet.

Input: ``DecodedSample``. Output under ``OUT``::

    OUT/cuts.jsonl.gz                     the CutSet (``CutSet.from_file`` reads it back)
    OUT/audio/<key>.user.flac             session rate (16 kHz), mono
    OUT/audio/<key>.assistant.flac        ``target_sample_rate`` (default 22050 Hz)
    OUT/shar/                             the same cuts as Lhotse Shar (unless ``shar=False``)

Per cut, ``custom`` also keeps the action channel (``actions``: every action object of the
timeline, ``offset_s`` added), ``system_prompt``, ``family``, ``lang``, ``session_id``, ``seed_id``.
Per supervision: ``alignment["word"]`` (heard words), ``custom`` with ``utterance_id``, ``kind``,
``interrupted`` and, when cut, the ``full_text`` that was planned. Supervision text of an
interrupted utterance is what was heard. Reject codes: none of its own (see ``export.py``).

Needs ``lhotse`` (``pip install 'duplexloom[nemo]'`` or ``pip install lhotse``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from duplexloom.schemas.sample import SampleMeta
from duplexloom.schemas.units import samples_to_seconds
from duplexloom.timeline.sample_codec import DecodedSample, encode_flac

from .export import heard_span, heard_text, heard_words, resample

USER_ROLE = "user"  # DuplexS2SDataset's default input_roles
AGENT_ROLE = "agent"  # ... and output_roles
NEMO_TARGET_SAMPLE_RATE = 22_050  # the s2s_duplex recipe's codec rate
CUTS_FILE = "cuts.jsonl.gz"
AUDIO_DIR = "audio"
SHAR_DIR = "shar"


def _lhotse() -> Any:
    try:  # lazy: lhotse, optional dependency (duplexloom[nemo])
        import lhotse
    except ImportError as err:  # optional dependency: say what to install
        raise ImportError(
            "the NeMo export needs lhotse: pip install 'duplexloom[nemo]' (or pip install lhotse)"
        ) from err
    return lhotse


def _recording(rec_id: str, path: Path, sample_rate: int, num_samples: int) -> Any:
    lhotse = _lhotse()
    return lhotse.Recording(
        id=rec_id,
        sources=[lhotse.audio.AudioSource(type="file", channels=[0], source=str(path))],
        sampling_rate=sample_rate,
        num_samples=num_samples,
        duration=num_samples / sample_rate,
    )


def nemo_supervisions(
    meta: SampleMeta, recording_id: str, user_role: str = USER_ROLE, agent_role: str = AGENT_ROLE
) -> list[Any]:
    """One ``SupervisionSegment`` per heard utterance (seconds on the cut's clock), by start."""
    lhotse = _lhotse()
    roles = {"user": user_role, "assistant": agent_role}
    sr = meta.timeline.sample_rate
    sups = []
    for utt in meta.timeline.utterances:
        start, end = heard_span(utt)
        if end <= start:
            continue  # nothing of it reached the track
        words = heard_words(utt)
        custom: dict[str, Any] = {
            "utterance_id": utt.id,
            "kind": utt.kind,
            "interrupted": utt.cut_samples is not None,
        }
        if utt.cut_samples is not None:
            custom["full_text"] = utt.text
        sups.append(
            lhotse.SupervisionSegment(
                id=f"{meta.key}-{utt.id}",
                recording_id=recording_id,
                start=samples_to_seconds(start, sr),
                duration=samples_to_seconds(end - start, sr),
                channel=0,
                text=heard_text(utt),
                language=utt.lang,
                speaker=roles[utt.speaker],
                alignment={
                    "word": [
                        lhotse.supervision.AlignmentItem(
                            symbol=w.text,
                            start=samples_to_seconds(w.start_samples, sr),
                            duration=samples_to_seconds(w.end_samples - w.start_samples, sr),
                        )
                        for w in words
                    ]
                }
                if words
                else None,
                custom=custom,
            )
        )
    sups.sort(key=lambda s: (s.start, s.id))
    return sups


def cut_custom(meta: SampleMeta) -> dict[str, Any]:
    """Everything of the session a duplex trainer may want beyond audio and turns (JSON values)."""
    sr = meta.timeline.sample_rate
    actions = []
    for action in meta.timeline.actions:
        item = action.model_dump(mode="json", exclude_none=True)
        item["offset_s"] = samples_to_seconds(action.offset_samples, sr)
        actions.append(item)
    return {
        "actions": actions,
        "system_prompt": meta.system_prompt,
        "family": meta.family,
        "lang": meta.lang,
        "session_id": meta.timeline.session_id,
        "seed_id": meta.seed_id,
    }


class NemoExporter:
    """Writes the two audio files per sample; ``close`` writes ``cuts.jsonl.gz`` (and Shar)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        target_sample_rate: int | None = NEMO_TARGET_SAMPLE_RATE,
        shar: bool = True,
        shar_shard_size: int = 1000,
        user_role: str = USER_ROLE,
        agent_role: str = AGENT_ROLE,
    ) -> None:
        _lhotse()  # fail before any work when lhotse is missing
        self.out_dir = Path(out_dir)
        self.audio_dir = self.out_dir / AUDIO_DIR
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.target_sample_rate = target_sample_rate
        self.shar = shar
        self.shar_shard_size = shar_shard_size
        self.user_role, self.agent_role = user_role, agent_role
        self.cuts: list[Any] = []

    def add(self, sample: DecodedSample) -> dict[str, float]:
        self.cuts.append(self.make_cut(sample))
        return {"duration_s": self.cuts[-1].duration}

    def make_cut(self, sample: DecodedSample) -> Any:
        lhotse = _lhotse()
        meta = sample.meta
        sr = meta.timeline.sample_rate
        target_sr = self.target_sample_rate or sr
        user_path = (self.audio_dir / f"{sample.key}.user.flac").resolve()
        assistant_path = (self.audio_dir / f"{sample.key}.assistant.flac").resolve()
        assistant = resample(sample.assistant_audio, sr, target_sr)
        user_path.write_bytes(encode_flac(np.asarray(sample.user_audio), sr))
        assistant_path.write_bytes(encode_flac(assistant, target_sr))
        user_rec = _recording(f"{sample.key}-user", user_path, sr, len(sample.user_audio))
        target_rec = _recording(f"{sample.key}-assistant", assistant_path, target_sr, len(assistant))
        return lhotse.MonoCut(
            id=sample.key,
            start=0.0,
            duration=user_rec.duration,
            channel=0,
            recording=user_rec,
            supervisions=nemo_supervisions(meta, user_rec.id, self.user_role, self.agent_role),
            custom={"target_audio": target_rec, **cut_custom(meta)},
        )

    def close(self) -> list[Path]:
        lhotse = _lhotse()
        cuts = lhotse.CutSet.from_cuts(self.cuts)
        path = self.out_dir / CUTS_FILE
        cuts.to_file(path)
        files = [path]
        if self.shar:
            (self.out_dir / SHAR_DIR).mkdir(exist_ok=True)
            shar_files = cuts.to_shar(
                self.out_dir / SHAR_DIR,
                fields={"recording": "flac", "target_audio": "flac"},
                shard_size=self.shar_shard_size,
            )
            files += [Path(p) for paths in shar_files.values() for p in paths]
        return files
