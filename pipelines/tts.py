"""Stage ``tts``: synthesize every planned utterance with a Beam ``ModelHandler`` under RunInference.

The backend (``duplexloom.tts_adapters.get_tts(tts.backend, **tts.options)``, wrapped in
``CachedTTS`` over a ``SynthesisCache`` in the run's cache directory) is loaded once per worker
and fed batches; inside a batch the items are grouped by (voice, language) so the backend sees
one ``synthesize(texts, speaker, lang)`` call per group. A group whose call raises is retried item
by item through the routing point, so one bad text rejects one utterance, not the batch.
Input: :class:`~duplexloom.schemas.clip.SpeakRequest`. Output: :class:`Spoken` (the request and its
``SynthResult`` or its ``Reject``; it goes on to the align stage within the same fused step, never
through a shuffle); the build stage turns an utterance reject into the session's reject.
Lazy mode (``lazy_audio``, when every worker can read the cache: see ``run.shared_cache``): a cached
utterance comes as its path in the cache, length and content hash, without its samples (the align
stage hands that path on as the clip's ``AudioRef``); they are read where they are needed (alignment
on a miss, the build stage). This spares a prompt-only rerun
one audio decode per utterance and the spool's copy of it.
Reject codes: the backend's (``tts_unsupported_lang``, ``tts_empty_text``, ``tts_failed``, ...).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from duplexloom.pipelines.routing import call_routed
from duplexloom.pipelines.stage_runtime import set_torch_threads, timed
from duplexloom.pipelines.transport import prepare_worker
from duplexloom.schemas import Reject
from duplexloom.schemas.clip import SpeakRequest
from duplexloom.tts_adapters import SynthesisCache, get_tts
from duplexloom.tts_adapters.base import SynthResult
from duplexloom.tts_adapters.cache import CachedTTS

STAGE = "tts"
log = logging.getLogger("duplexloom.pipelines")


@dataclass(frozen=True)
class Spoken:
    """A request and its synthesized audio (``result``) or its ``reject``."""

    item: SpeakRequest
    result: SynthResult | None = None
    reject: Reject | None = None


class TTSModelHandler(ModelHandler[SpeakRequest, PredictionResult, Any]):
    def __init__(
        self,
        backend: str,
        options: dict,
        cache_dir: str | None,
        batch_size: int,
        policy: str = "reject",
        torch_threads: int | None = None,
        lazy_audio: bool = False,
    ) -> None:
        super().__init__()
        self.lazy_audio = lazy_audio
        self.backend = backend
        self.options = dict(options)
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.policy = policy
        self.torch_threads = torch_threads

    def load_model(self):
        prepare_worker()
        set_torch_threads(self.torch_threads)

        model = get_tts(self.backend, **self.options)
        if self.cache_dir:
            model = CachedTTS(model, SynthesisCache(self.cache_dir))
        log.info("[tts] loaded backend %r (cache: %s)", self.backend, self.cache_dir or "off")
        return model

    def batch_elements_kwargs(self):
        # Fixed batches (the bundle's last may be smaller): Beam's adaptive sizing fits a
        # regression per batch, which costs more than a cached utterance on a rerun.
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def run_inference(
        self, batch: Sequence[SpeakRequest], model, inference_args=None
    ) -> Iterable[PredictionResult]:
        # torch's thread count is per thread (resampling runs torch): set it on this bundle thread.
        set_torch_threads(self.torch_threads)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, it in enumerate(batch):
            groups.setdefault((it.speaker.id, it.lang), []).append(i)
        out: list[Spoken | None] = [None] * len(batch)
        with timed(STAGE, len(batch)):
            for idx in groups.values():
                items = [batch[i] for i in idx]
                res, rej = call_routed(
                    STAGE,
                    items[0].session_id,
                    self._synthesize,
                    model,
                    [it.text for it in items],
                    items[0].speaker,
                    items[0].lang,
                    policy=self.policy,
                )
                # With the cache on, results are what the cache holds (24-bit), fresh or not, so a
                # first run and a rerun see the same samples (CachedTTS reads back what it wrote).
                if rej is None and len(res) == len(items):
                    for i, r in zip(idx, res, strict=True):
                        out[i] = Spoken(batch[i], r)
                    continue
                for i in idx:  # isolate the culprit
                    it = batch[i]
                    one, r1 = call_routed(
                        STAGE,
                        it.session_id,
                        self._synthesize,
                        model,
                        [it.text],
                        it.speaker,
                        it.lang,
                        policy=self.policy,
                    )
                    out[i] = Spoken(it, reject=r1) if r1 is not None else Spoken(it, one[0])
        self.done = getattr(self, "done", 0) + len(batch)
        log.info("[%s] batch of %d utterances done (%d by this worker)", STAGE, len(batch), self.done)
        return [PredictionResult(example=it, inference=o) for it, o in zip(batch, out, strict=True)]

    def get_num_bytes(self, batch: Sequence[SpeakRequest]) -> int:
        # For RunInference's byte metric; the default pickles the whole batch to measure it.
        return sum(len(it.text.encode("utf-8")) for it in batch)

    def _synthesize(self, model, texts: list[str], speaker, lang: str) -> list:
        if not isinstance(model, CachedTTS):
            return model.synthesize(texts, speaker, lang)
        if self.lazy_audio:
            return model.synthesize_lazy(texts, speaker, lang)
        # The cache may be local to this worker: pass the samples on, not a path into it.
        return [dataclasses.replace(r, stored=None) for r in model.synthesize(texts, speaker, lang)]

    def get_metrics_namespace(self) -> str:
        return "tts_model"
