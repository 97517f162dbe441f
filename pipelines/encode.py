"""Stage ``serialize``: a built session -> chunk records, trace, sample metadata and tar members.

Input: ``(seed_id, (PlannedSession, BuiltSession))``. Output: :class:`~.shards.EncodedSample` (the
shard, the key, the members of ``duplexloom.timeline.sample_codec.encode_sample`` plus any extra
layout members, the manifest row and the timing stats); rejects ``(shard, Reject)``.
Calls ``duplexloom.timeline.serialize.serialize`` (TA4 + action FIFO with the configured tokenizer,
budget, ASR sides and lag), ``validate.check_chunks`` (every SPEC 5-7 invariant: a violation
rejects the sample, it is never written) and the layout renderers named in
``serializer.layouts`` besides ``ta4`` (``lws``, ``ct``) when their modules exist.
The two audio tracks' FLAC encodings are cached (:class:`FlacCache`) so that a prompt-only rerun,
which changes every sample but none of its audio, does not encode them again.
Reject codes: the serializer's (``text_outruns_audio``, ``piece_over_budget``, ...), the
``check_chunks`` violation codes, ``unknown_layout``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
from typing import Any

import apache_beam as beam

from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.memory import pin_mmap_threshold
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.shards import EncodedSample
from duplexloom.pipelines.stages import timed
from duplexloom.schemas import RejectError, SampleMeta
from duplexloom.schemas.units import chunk_samples

STAGE = "serialize"
log = logging.getLogger("duplexloom.pipelines")

# layout name -> (module, function, member suffix); the function takes the timeline (+ tokenizer).
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "lws": ("duplexloom.timeline.layouts.lws", "render_lws", "lws.json"),
    "ct": ("duplexloom.timeline.layouts.ct", "render_ct", "ct.json"),
}


def _layout_member(name: str, timeline, tokenizer, annotation) -> bytes:
    """The extra member of layout ``name``: lws gets the written reply of the cognition stream (if
    the annotator made one), ct the rendered thinking-chain nodes (``{TYPE} text @ctx:ID``)."""
    from duplexloom.annotators.chains import render as render_node
    from duplexloom.timeline.sample_codec import dumps_json

    if name not in LAYOUTS:
        raise RejectError("unknown_layout", f"layout {name!r}; known: ta4, {', '.join(LAYOUTS)}")
    mod, fn, _ = LAYOUTS[name]
    render = getattr(importlib.import_module(mod), fn)
    if name == "lws":
        reply = next((c.reply_text for c in annotation.cognition), None)
        out = render(timeline, tokenizer, reply_text=reply)
    else:
        out = render(timeline, tokenizer, chain_nodes=[render_node(n) for n in annotation.chains])
    return dumps_json(out)


def timing_of(timeline) -> dict[str, Any]:
    from duplexloom.timeline.timing import timing_stats

    stats = timing_stats(timeline)
    return stats.model_dump(mode="json") if hasattr(stats, "model_dump") else dict(stats)


class FlacCache:
    """Content-addressed FLAC encodings of the session tracks (``<cache>/flac/<k[:2]>/<k>.flac``,
    key = sha256 of the float32 samples, the rate and libsndfile's version). A rerun after a
    prompt-only change rebuilds every sample but its audio is unchanged; encoding the two tracks
    was half of the serialize stage. The bytes are :func:`encode_flac`'s, so shards are the same
    with or without the cache."""

    def __init__(self, directory: str) -> None:
        import soundfile

        self.dir = directory
        self.version = soundfile.__libsndfile_version__

    def __call__(self, audio, sample_rate: int) -> bytes:
        import numpy as np

        from duplexloom.timeline.sample_codec import encode_flac

        a = np.ascontiguousarray(audio, dtype=np.float32)
        h = hashlib.sha256(memoryview(a).cast("B"))
        h.update(f"|{sample_rate}|PCM_16|{self.version}".encode())
        key = h.hexdigest()
        path = os.path.join(self.dir, key[:2], f"{key}.flac")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
        data = encode_flac(a, sample_rate)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return data


def encode_one(ps, built, cfg, tokenizer, num_shards: int, flac_cache=None) -> EncodedSample:
    from duplexloom.timeline.sample_codec import encode_sample
    from duplexloom.timeline.serialize import render_trace, serialize
    from duplexloom.timeline.validate import check_chunks

    sc = cfg.serializer
    tl = built.timeline
    chunks = serialize(
        tl, tokenizer=tokenizer, budget=sc.budget, asr_sides=sc.asr_sides, lag_chunks=sc.lag_chunks
    )
    bad = check_chunks(tl, chunks, tokenizer, sc.budget, lag_chunks=sc.lag_chunks)
    if bad:
        v = bad[0]
        raise RejectError(v.code, f"chunk {v.chunk}: {v.detail} ({len(bad)} violation(s))")
    key = sample_key(ps.annotation.seed_id)
    ann = ps.annotation
    reply = next((c.reply_text for c in ann.cognition), None)
    meta = SampleMeta(
        key=key,
        family=ps.plan.family,
        lang=ps.plan.lang,
        system_prompt=ps.plan.system_prompt,
        budget=sc.budget,
        asr_lag_chunks=sc.lag_chunks,
        speakers={"user": ps.user, "assistant": ps.assistant},
        tokenizer=tokenizer.info,
        run_seed=cfg.run_seed,
        seed_id=ann.seed_id,
        provenance={
            "seed": ps.seed.model_dump(mode="json"),
            "annotation": dict(ann.provenance),
            "prompt_hashes": dict(ann.prompt_hashes),
            "annotator": cfg.annotator_config().backend,
            "tts": {"backend": cfg.tts.backend, "options": dict(cfg.tts.options)},
            "aligner": {
                "backend": cfg.aligner.backend if cfg.aligner.enabled else "native",
                "options": dict(cfg.aligner.options),
            },
        },
        timeline=tl,
        layouts=tuple(sc.layouts),
        reply_text=reply,
    )
    extra = {
        LAYOUTS[name][2]: _layout_member(name, tl, tokenizer, ps.annotation)
        for name in sc.layouts
        if name != "ta4"
    }
    members = encode_sample(
        meta,
        built.user_audio,
        built.assistant_audio,
        chunks,
        render_trace(chunks),
        extra,
        **({"encode_audio": flac_cache} if flac_cache is not None else {}),
    )
    sr = tl.sample_rate

    def speech_s(side: str) -> float:
        return (
            sum(u.audio_end_samples - u.audio_start_samples for u in tl.utterances if u.speaker == side) / sr
        )

    shard = shard_of(key, num_shards)
    row = {
        "key": key,
        "shard": f"shards/{shard:06d}.tar",
        "seed_id": ann.seed_id,
        "family": ps.plan.family,
        "lang": ps.plan.lang,
        # the audio's length (encode_sample pads both tracks to every chunk, drain chunks included),
        # not the timeline's: a manifest row must say how long the sample's audio is
        "duration_s": len(chunks) * chunk_samples(sr, meta.chunk_ms) / sr,
        "user_speech_s": speech_s("user"),
        "assistant_speech_s": speech_s("assistant"),
        "n_chunks": len(chunks),
        "n_utterances": len(tl.utterances),
        "n_actions": len(tl.actions),
        "n_tool_calls": sum(1 for a in tl.actions if a.is_tool_call),
        "max_action_tokens": max((c.action_tokens for c in chunks), default=0),
        "user_speaker": ps.user.id,
        "assistant_speaker": ps.assistant.id,
        "tokenizer": tokenizer.info.name,
        "layouts": ",".join(sc.layouts),
        "prompt_hashes": json.dumps(dict(sorted(ann.prompt_hashes.items())), sort_keys=True),
        "bytes": sum(len(v) for v in members.values()),
    }
    return EncodedSample(shard=shard, key=key, members=members, row=row, timing=timing_of(tl))


class EncodeSample(beam.DoFn):
    def __init__(self, cfg, progress_total: int | None = None) -> None:
        self.cfg = cfg
        self.total = progress_total
        self.done = 0

    def setup(self) -> None:
        pin_mmap_threshold()  # flat worker memory, see pipelines/memory.py
        from duplexloom.timeline.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(self.cfg.serializer.tokenizer)
        # The caches are worker-local and on with tts.cache, like the TTS and alignment caches.
        self.flac_cache = (
            FlacCache(os.path.join(self.cfg.cache_dir(), "flac")) if self.cfg.tts.cache else None
        )

    def process(self, kv):
        seed_id, (ps, built) = kv
        n = self.cfg.shards.num_shards
        with timed(STAGE):
            enc, rej = call_routed(
                STAGE,
                seed_id,
                encode_one,
                ps,
                built,
                self.cfg,
                self.tokenizer,
                n,
                self.flac_cache,
                policy=self.cfg.on_internal_error,
            )
        if rej is not None:
            yield beam.pvalue.TaggedOutput(REJECTS, (shard_of(sample_key(seed_id), n), rej))
            return
        self.done += 1
        if self.cfg.progress:
            # A tqdm-like line; the count is this worker's (the only one in the default DirectRunner).
            of = f"/{self.total} seeds" if self.total else ""
            log.info(
                "[progress] %d%s serialized | %-24s %5.1f s audio, %3d chunks",
                self.done,
                of,
                enc.key,
                enc.row["duration_s"],
                enc.row["n_chunks"],
            )
        yield enc
