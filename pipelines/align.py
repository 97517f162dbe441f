"""Stage ``align``: CTC force-alignment of every synthesized utterance, a ``ModelHandler`` under
RunInference (the acoustic model is loaded once per worker and fed batches).

Input: :class:`~.tts.Spoken`. Output: :class:`Aligned` — the clip's typed record
(:class:`~duplexloom.schemas.clip.AlignedClip`: word/char spans on the clip's clock, confidence,
quality scores, or the utterance's reject; a TTS reject passes through untouched) and, while they
are in memory, its samples at the session rate (``SpoolClips``, pipelines/spool.py, writes those
and sets the clip's ``AudioRef``; only the ``AlignedClip`` crosses the session shuffle).
``aligner.enabled: false`` trusts the TTS engine's native word starts instead (each word ends where
the next starts; debugging only).
Alignments are cached like TTS audio (``<cache>/align/``, keyed by the audio's content hash, the
text, the language and the aligner settings), so a rerun after a prompt-only change aligns nothing
twice. An utterance whose audio lives in the TTS cache (``SynthResult.stored``, the TTS stage's
lazy mode) leaves with that path as its ``AudioRef`` and no samples; on an alignment cache hit its
audio is not read at all. Rejects are not cached (a fixed aligner may accept the item next time).

Quality guard (``aligner.guard``): every alignment is scored (:class:`AlignScores`: the share of the
utterance's speech energy inside some word span, the share of words whose span is mostly silence,
the aligner's confidence; see ``duplexloom.aligners.energy``); an utterance below any bar is
rejected ``align_poor`` with its scores in the detail and ``extra``, never shipped. The scores are
cached with the alignment (the bar is applied on every run, so changing it re-aligns nothing) and
their distribution over the utterances this run aligned goes into the run summary
(``align_quality``, :class:`AlignQuality`).
Reject codes: the aligner's (``align_failed``, ``align_low_confidence``, ``align_text_too_long``...)
and ``align_poor``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from duplexloom.aligners import get_aligner
from duplexloom.aligners.base import model_fingerprint
from duplexloom.content_cache import ContentCache
from duplexloom.pipelines.routing import call_routed
from duplexloom.pipelines.stage_runtime import set_torch_threads, timed
from duplexloom.pipelines.transport import pack_spans, prepare_worker
from duplexloom.pipelines.tts import Spoken
from duplexloom.schemas import Reject, RejectError, TimedSpan
from duplexloom.schemas.clip import AlignedClip, AlignScores, PackedSpan
from duplexloom.tts_adapters.cache import audio_sha256, load

STAGE = "align"
log = logging.getLogger("duplexloom.pipelines")


@dataclass(frozen=True)
class Aligned:
    """The align stage's output: the clip's record and, until ``SpoolClips`` writes them, its
    samples (float32 at ``sample_rate`` Hz; None on a reject, or when ``clip.audio`` already says
    where they are: an entry of the TTS cache)."""

    clip: AlignedClip
    samples: np.ndarray | None = None
    sample_rate: int = 0


def align_key(audio_sha256: str, sample_rate: int, text: str, lang: str, settings: dict) -> str:
    """Alignment cache key: the audio's content hash (``tts_adapters.cache.audio_sha256``, which
    the TTS cache stores, so a hit needs no audio), the text, the language and the aligner settings."""
    meta = {"audio": audio_sha256, "sr": sample_rate, "text": text, "lang": lang, "settings": settings}
    blob = json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AlignmentCache(ContentCache):
    """``<dir>/<key[:2]>/<key>.json`` holding words, chars, confidence and scores
    (:class:`~duplexloom.content_cache.ContentCache`)."""

    def __init__(self, directory: str) -> None:
        super().__init__(directory, ".json")

    def get(self, key: str):
        """(words, chars, confidence, scores) with packed spans, or None. Validated where they
        are unpacked (the build stage), like spans fresh from the aligner."""
        data = self.read(key)
        d = None if data is None else json.loads(data)
        if d is None or "scores" not in d:  # none, or written before the quality guard: align again
            return self.counted(None)

        def spans(xs) -> tuple[PackedSpan, ...]:
            return tuple((x["text"], x["start_samples"], x["end_samples"], x.get("confidence")) for x in xs)

        return self.counted(
            (spans(d["words"]), spans(d["chars"]), d["confidence"], AlignScores(*d["scores"]))
        )

    def put(self, key: str, words, chars, confidence, scores: AlignScores) -> None:
        """Store packed spans (the JSON holds TimedSpan fields, as before)."""
        fields = ("text", "start_samples", "end_samples", "confidence")
        d = {
            "words": [dict(zip(fields, w, strict=True)) for w in words],
            "chars": [dict(zip(fields, c, strict=True)) for c in chars],
            "confidence": confidence,
            "scores": list(scores),
        }
        self.write(key, json.dumps(d).encode("utf-8"))


def native_words(result) -> tuple[TimedSpan, ...]:
    starts = result.word_starts_samples
    if not starts:
        raise RejectError("align_failed", "aligner disabled and the TTS engine reported no word times")
    n = result.duration_samples
    ends = [s for _, s in starts[1:]] + [n]
    return tuple(
        TimedSpan(text=w, start_samples=min(s, n), end_samples=max(min(e, n), min(s, n)))
        for (w, s), e in zip(starts, ends, strict=True)
    )


def scores_of(al) -> AlignScores:
    """The quality scores of an ``Alignment`` (rounded: they are cached and reported, not fitted)."""
    cov = al.coverage
    if cov is None:
        raise ValueError("alignment without coverage scores (CTCAligner.align computes them)")
    return AlignScores(
        round(cov.speech_in_spans, 4), round(cov.mostly_silent_share, 4), round(float(al.confidence), 4)
    )


def check_quality(scores: AlignScores, guard: dict) -> None:
    """Raise ``align_poor`` (with the scores and the failed bars) when ``scores`` miss the bar of
    ``guard`` (the fields of ``pipelines.config.AlignGuardConfig``)."""
    if not guard.get("enabled", True):
        return
    failed = []
    if scores.speech_in_spans < guard["min_speech_in_spans"]:
        failed.append(f"speech_in_spans {scores.speech_in_spans:.3f} < {guard['min_speech_in_spans']}")
    if scores.mostly_silent_share > guard["max_mostly_silent_share"]:
        failed.append(
            f"mostly_silent_share {scores.mostly_silent_share:.3f} > {guard['max_mostly_silent_share']}"
        )
    if scores.confidence < guard["min_confidence"]:
        failed.append(f"confidence {scores.confidence:.3f} < {guard['min_confidence']}")
    if failed:
        raise RejectError("align_poor", "; ".join(failed), **scores._asdict())


QUALITY_EDGES: dict[str, tuple[float, ...]] = {
    "speech_in_spans": (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999),
    "mostly_silent_share": (0.0001, 0.1, 0.2, 0.5),
    "confidence": (0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
}


def _empty_stats() -> dict:
    return {"n": 0, "align_poor": 0, **{k: [0.0, None, [0] * (len(e) + 1)] for k, e in QUALITY_EDGES.items()}}


def _merge_stats(o: dict, x: dict) -> dict:
    o["n"] += x["n"]
    o["align_poor"] += x["align_poor"]
    for k in QUALITY_EDGES:
        a, b = o[k], x[k]
        a[0] += b[0]
        a[1] = b[1] if a[1] is None else (a[1] if b[1] is None else min(a[1], b[1]))
        a[2] = [p + q for p, q in zip(a[2], b[2], strict=True)]
    return o


def _stats_output(st: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"utterances": st["n"], "align_poor": st["align_poor"]}
    for k, edges in QUALITY_EDGES.items():
        total, low, counts = st[k]
        bins = [f"<{edges[0]:g}"] + [f"[{a:g},{b:g})" for a, b in zip(edges, edges[1:], strict=False)]
        bins.append(f">={edges[-1]:g}")
        out[k] = {
            "mean": round(total / st["n"], 4) if st["n"] else None,
            "min": low,
            "bins": bins,
            "counts": list(counts),
        }
    return out


class AlignQuality(beam.CombineFn):
    """The distribution of :class:`AlignScores` over every scored ``(session id, Aligned)`` (shipped
    or rejected ``align_poor``), overall and per language: per score its mean, min and a fixed-bin
    histogram, plus the count of ``align_poor`` rejects. Fixed bins keep the accumulator small on
    any number of utterances."""

    def create_accumulator(self):
        return {}  # lang -> stats

    def add_input(self, acc, keyed):
        a = keyed[1].clip
        if a.scores is None:
            return acc
        st = acc.setdefault(a.lang, _empty_stats())
        st["n"] += 1
        st["align_poor"] += int(a.reject is not None and a.reject.code == "align_poor")
        for k, edges in QUALITY_EDGES.items():
            v = float(getattr(a.scores, k))
            row = st[k]
            row[0] += v
            row[1] = v if row[1] is None else min(row[1], v)
            row[2][sum(1 for e in edges if v >= e)] += 1
        return acc

    def merge_accumulators(self, accs):
        out: dict[str, dict] = {}
        for acc in accs:
            for lang, st in acc.items():
                _merge_stats(out.setdefault(lang, _empty_stats()), st)
        return out

    def extract_output(self, acc):
        total = _empty_stats()
        for st in acc.values():
            _merge_stats(total, st)
        return {**_stats_output(total), "by_lang": {lang: _stats_output(acc[lang]) for lang in sorted(acc)}}


class AlignerModelHandler(ModelHandler[Spoken, PredictionResult, Any]):
    def __init__(
        self,
        backend: str,
        options: dict,
        batch_size: int,
        enabled: bool = True,
        policy: str = "reject",
        cache_dir: str | None = None,
        torch_threads: int | None = None,
        guard: dict | None = None,
    ) -> None:
        super().__init__()
        self.guard = dict(guard) if guard is not None else {"enabled": False}
        self.torch_threads = torch_threads
        self.cache_dir = cache_dir
        self.backend = backend
        self.options = dict(options)
        self.batch_size = batch_size
        self.enabled = enabled
        self.policy = policy

    def load_model(self):
        prepare_worker()
        if self.enabled:
            set_torch_threads(self.torch_threads)
        self._prepare()
        if not self.enabled:
            return None

        log.info("[align] loading aligner %r", self.backend)
        return get_aligner(self.backend, **self.options)

    def _prepare(self) -> None:
        """The cache and the settings key on *this* handler. Beam shares a loaded model between
        the DoFn copies of a process and calls ``load_model`` on one of them only, so every copy
        sets these up itself (a second copy used to fail with AttributeError)."""
        if getattr(self, "settings", None) is not None:
            return
        self.cache = AlignmentCache(self.cache_dir) if self.cache_dir else None
        settings: dict[str, Any] = {"backend": self.backend, "options": self.options}
        if self.enabled:
            # The weights, not just the settings: a model update must not hit old cached alignments.
            settings["model"] = model_fingerprint(self.backend, **self.options)
        self.settings = settings

    def batch_elements_kwargs(self):
        # Fixed batches (the bundle's last may be smaller): Beam's adaptive sizing fits a
        # regression per batch, which costs more than a cached utterance on a rerun.
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def run_inference(
        self, batch: Sequence[Spoken], model, inference_args=None
    ) -> Iterable[PredictionResult]:
        self._prepare()
        if model is not None:
            # torch's thread count is per thread: a bundle thread other than the one that loaded
            # the model may still have torch's default, and the model's outputs depend on it.
            set_torch_threads(self.torch_threads)
        out: list[Aligned] = []
        with timed(STAGE, len(batch)):
            for sp in batch:
                out.append(self.align_one(sp, model))
        self.done = getattr(self, "done", 0) + len(batch)
        log.info("[%s] batch of %d utterances done (%d by this worker)", STAGE, len(batch), self.done)
        return [PredictionResult(example=sp, inference=a) for sp, a in zip(batch, out, strict=True)]

    def get_num_bytes(self, batch: Sequence[Spoken]) -> int:
        # For RunInference's byte metric; the default pickles the whole batch, audio included.
        return sum(4 * sp.result.duration_samples for sp in batch if sp.result is not None)

    def align_one(self, sp: Spoken, model) -> Aligned:
        req = sp.item

        def rejected(reject: Reject, scores: AlignScores | None = None) -> Aligned:
            clip = AlignedClip(
                session_id=req.session_id, utterance_id=req.utterance_id, lang=req.lang,
                scores=scores, reject=reject,
            )  # fmt: skip
            return Aligned(clip)

        if sp.reject is not None:
            return rejected(sp.reject)
        r = sp.result

        def done(words, chars, confidence, scores=None, audio=None) -> Aligned:
            if scores is not None:
                _, rej = call_routed(STAGE, req.session_id, check_quality, scores, self.guard)
                if rej is not None:
                    return rejected(rej, scores)
            # A result stored in the TTS cache travels on as its path, not its samples.
            ref = r.stored
            clip = AlignedClip(
                session_id=req.session_id, utterance_id=req.utterance_id, lang=req.lang, audio=ref,
                words=words, chars=chars, confidence=confidence, scores=scores,
            )  # fmt: skip
            if ref is not None:
                return Aligned(clip)
            return Aligned(clip, r.audio if audio is None else audio, r.sample_rate)

        if model is None:
            words, rej = call_routed(STAGE, req.session_id, native_words, r, policy=self.policy)
            return rejected(rej) if rej is not None else done(pack_spans(words), (), None)
        key = None
        if self.cache is not None:
            sha = r.audio_sha256 or audio_sha256(r.audio)
            key = align_key(sha, r.sample_rate, req.text, req.lang, self.settings)
            hit = self.cache.get(key)
            if hit is not None:
                return done(*hit)
        audio = r.audio if r.audio is not None else load(r).audio
        al, rej = call_routed(
            STAGE, req.session_id, model.align, audio, r.sample_rate, req.text, req.lang, policy=self.policy
        )
        if rej is not None:
            return rejected(rej)
        words, chars, conf = pack_spans(al.words), pack_spans(al.chars), float(al.confidence)
        scores = scores_of(al)
        if self.cache is not None:
            self.cache.put(key, words, chars, conf, scores)
        return done(words, chars, conf, scores, audio)

    def get_metrics_namespace(self) -> str:
        return "align_model"
