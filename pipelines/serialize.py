"""Stage ``serialize``: a built session -> chunk records, trace, sample metadata and tar members.

One sample goes :func:`serialize_one` (the chunk records) -> :func:`semantic_one` (the SPEC 17
self-check) -> :func:`encode_one` (the tar members and its manifest row); :class:`SerializeSample`
is the DoFn that runs them and routes their rejects.
Input: ``(seed_id, (PlannedSession, BuiltSession))``. Output: :class:`~.shards.EncodedSample` (the
shard, the key, the members of ``duplexloom.timeline.sample_codec.encode_sample`` plus any extra
layout members, the manifest row and the timing stats); rejects ``(shard, Reject)``.
Calls ``duplexloom.timeline.serialize.serialize`` (TA4 + action FIFO with the configured tokenizer,
budget, ASR sides and lag), ``validate.check_chunks`` (every SPEC 5-7 invariant: a violation
rejects the sample, it is never written) and the layout renderers named in
``serializer.layouts`` besides ``ta4`` (``lws``, ``ct``) when their modules exist.
The two audio tracks' FLAC encodings are cached (:class:`FlacCache`) so that a prompt-only rerun,
which changes every sample but none of its audio, does not encode them again.
The manifest row (:class:`~duplexloom.schemas.manifest.ManifestRow`) says whether the annotation's cognition and chains reached the sample
(:func:`cognition_status`).
Between serializing and encoding, the **semantic self-check** (stage ``semantic``, SPEC 17,
``duplexloom.qa.semantic``) scores the sample from its two tracks and its action channel; a
failing sample becomes a ``semantic_<check>`` reject and is never written (``semantic_check:
false`` turns the stage off).
Reject codes: the serializer's (``text_outruns_audio``, ``piece_over_budget``, ...), the
``check_chunks`` violation codes, ``unknown_layout``; stage ``semantic``: ``semantic_channel``,
``semantic_early_response``, ``semantic_early_label``, ``semantic_label_count``,
``semantic_interrupt_stop``, ``semantic_backchannel``, ``semantic_tool_timing``,
``semantic_asr_timing``, ``semantic_word_spans``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import soundfile

from duplexloom.annotators.cognition import reply_turn
from duplexloom.content_cache import ContentCache
from duplexloom.pipelines.keys import sample_key, shard_of
from duplexloom.pipelines.routing import REJECTS, call_routed
from duplexloom.pipelines.shards import EncodedSample
from duplexloom.pipelines.stage_runtime import timed
from duplexloom.pipelines.transport import prepare_worker
from duplexloom.qa.semantic import SemanticReport, check_sample, reject_code
from duplexloom.schemas import RejectError, SampleMeta, Timeline
from duplexloom.schemas.manifest import ManifestRow
from duplexloom.schemas.units import chunk_samples
from duplexloom.timeline.cognition import CHAIN_PROV, COGNITION_PROV, THINK, render_node
from duplexloom.timeline.families import action_channel, asr_sides, keep_channel
from duplexloom.timeline.sample_codec import dumps_json, encode_flac, encode_sample
from duplexloom.timeline.serialize import render_trace, serialize
from duplexloom.timeline.timing import timing_stats
from duplexloom.timeline.tokenizer import load_tokenizer
from duplexloom.timeline.validate import check_chunks

STAGE = "serialize"
SEMANTIC_STAGE = "semantic"
log = logging.getLogger("duplexloom.pipelines")

# layout name -> (module, function, member suffix); the function takes the timeline (+ tokenizer).
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "lws": ("duplexloom.timeline.layouts.lws", "render_lws", "lws.json"),
    "ct": ("duplexloom.timeline.layouts.ct", "render_ct", "ct.json"),
}


def written_replies(annotation) -> dict[int, str]:
    """Assistant turn index -> the full written answer of the cognition stream it replies to."""
    out = {}
    for st in annotation.cognition:
        j = reply_turn(annotation.turns, st.turn_index)
        if j is not None:
            out[j] = st.reply_text
    return out


def chains_by_turn(annotation) -> dict[int, list[str]]:
    """User turn index -> its rendered thinking-chain nodes (``{TYPE} text @ctx:ID``), in order."""
    out: dict[int, list[str]] = {}
    for n in annotation.chains:
        out.setdefault(n.turn_index, []).append(render_node(n))
    return out


def _layout_member(name: str, timeline, tokenizer, annotation) -> bytes:
    """The extra member of layout ``name``: lws gets the written replies of the cognition streams
    (if the annotator made them; the listening text comes from the timeline's think actions), ct
    the rendered thinking-chain nodes of each user turn."""
    if name not in LAYOUTS:
        raise RejectError("unknown_layout", f"layout {name!r}; known: ta4, {', '.join(LAYOUTS)}")
    mod, fn, _ = LAYOUTS[name]
    render = getattr(importlib.import_module(mod), fn)
    if name == "lws":
        out = render(timeline, tokenizer, written=written_replies(annotation))
    else:
        out = render(timeline, tokenizer, chains_by_turn(annotation))
    return dumps_json(out)


def cognition_status(annotation, timeline, layouts, think_families) -> dict[str, str]:
    """Per sample, whether its cognition and chains reached the data (``carried``) or why not
    (``omitted:<reason>``); the run summary counts them per family."""
    thinks = [a for a in timeline.actions if a.name == THINK]
    out = {}
    for field, prov_prefix, layout in (("cognition", COGNITION_PROV, "lws"), ("chains", CHAIN_PROV, "ct")):
        made = getattr(annotation, field)
        on_ta4 = any(a.provenance.startswith(prov_prefix + ":") for a in thinks)
        if not made:
            why = annotation.provenance.get(field, "")
            if why.startswith("omitted:"):
                out[field] = why
            elif field == "cognition" and timeline.family not in think_families:
                out[field] = "omitted:family_not_in_think_families"
            else:
                out[field] = "omitted:not_annotated"
        elif on_ta4 or (field == "chains" and layout in layouts):
            out[field] = "carried"
        elif timeline.family not in think_families:
            out[field] = "omitted:family_not_in_think_families"
        else:
            out[field] = "omitted:turn_not_on_timeline"
    return out


def timing_of(timeline) -> dict[str, Any]:
    stats = timing_stats(timeline)
    return stats.model_dump(mode="json") if hasattr(stats, "model_dump") else dict(stats)


class FlacCache(ContentCache):
    """Content-addressed FLAC encodings of the session tracks (``<cache>/flac/<k[:2]>/<k>.flac``,
    key = sha256 of the float32 samples, the rate and libsndfile's version). A rerun after a
    prompt-only change rebuilds every sample but its audio is unchanged; encoding the two tracks
    was half of the serialize stage. The bytes are :func:`encode_flac`'s, so shards are the same
    with or without the cache."""

    def __init__(self, directory: str) -> None:
        super().__init__(directory, ".flac")
        self.version = soundfile.__libsndfile_version__

    def __call__(self, audio, sample_rate: int) -> bytes:
        a = np.ascontiguousarray(audio, dtype=np.float32)
        h = hashlib.sha256(memoryview(a).cast("B"))
        h.update(f"|{sample_rate}|PCM_16|{self.version}".encode())
        key = h.hexdigest()
        data = self.counted(self.read(key))
        if data is None:
            data = encode_flac(a, sample_rate)
            self.write(key, data)
        return data


@dataclass(frozen=True)
class Serialized:
    """A session on its family's action channel, serialized to chunk records."""

    timeline: Timeline
    chunks: list
    channel: tuple[str, ...]


def serialize_one(ps, built, cfg, tokenizer) -> Serialized:
    sc = cfg.serializer
    # SPEC 11: the family decides what the action channel carries; the timeline keeps only that.
    channel = action_channel(ps.plan.family, sc.channels)
    tl = keep_channel(built.timeline, channel)
    chunks = serialize(
        tl, tokenizer=tokenizer, budget=sc.budget, asr_sides=asr_sides(channel), lag_chunks=sc.lag_chunks
    )
    bad = check_chunks(tl, chunks, tokenizer, sc.budget, lag_chunks=sc.lag_chunks)
    if bad:
        v = bad[0]
        raise RejectError(v.code, f"chunk {v.chunk}: {v.detail} ({len(bad)} violation(s))")
    return Serialized(tl, chunks, channel)


def semantic_one(seed_id: str, ser: Serialized, built, lag_chunks: int) -> SemanticReport:
    """SPEC 17: score the sample from its waveforms and its action channel; a failure is a reject
    ``semantic_<check>`` naming the chunk (the sample is never shipped)."""
    rep = check_sample(
        sample_key(seed_id),
        ser.timeline,
        ser.chunks,
        built.user_audio,
        built.assistant_audio,
        action_channel=ser.channel,
        lag_chunks=lag_chunks,
    )
    if not rep.passed:
        raise RejectError(reject_code(rep), rep.describe(), failed_checks=rep.failed_checks())
    return rep


def encode_one(
    ps,
    built,
    ser: Serialized,
    report: SemanticReport | None,
    cfg,
    tokenizer,
    num_shards: int,
    flac_cache=None,
) -> EncodedSample:
    sc = cfg.serializer
    tl, chunks, channel = ser.timeline, ser.chunks, ser.channel
    key = sample_key(ps.annotation.seed_id)
    ann = ps.annotation
    reply = next((c.reply_text for c in ann.cognition), None)
    status = cognition_status(ann, tl, sc.layouts, cfg.timeline.think_families)
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
            "annotator": cfg.annotator.backend,
            "tts": {"backend": cfg.tts.backend, "options": dict(cfg.tts.options)},
            "aligner": {
                "backend": cfg.aligner.backend if cfg.aligner.enabled else "native",
                "options": dict(cfg.aligner.options),
            },
        },
        timeline=tl,
        layouts=tuple(sc.layouts),
        action_channel=channel,
        action_channel_override=ps.plan.family in sc.channels,
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
    row = ManifestRow(
        key=key,
        shard=f"shards/{shard:06d}.tar",
        seed_id=ann.seed_id,
        family=ps.plan.family,
        family_substitution=ann.provenance.get("family_substitution"),
        lang=ps.plan.lang,
        # the audio's length (encode_sample pads both tracks to every chunk, drain chunks included),
        # not the timeline's: a manifest row must say how long the sample's audio is
        duration_s=len(chunks) * chunk_samples(sr, meta.chunk_ms) / sr,
        user_speech_s=speech_s("user"),
        assistant_speech_s=speech_s("assistant"),
        n_chunks=len(chunks),
        n_utterances=len(tl.utterances),
        n_actions=len(tl.actions),
        n_tool_calls=sum(1 for a in tl.actions if a.is_tool_call),
        max_action_tokens=max((c.action_tokens for c in chunks), default=0),
        user_speaker=ps.user.id,
        assistant_speaker=ps.assistant.id,
        tokenizer=tokenizer.info.name,
        layouts=",".join(sc.layouts),
        action_channel=",".join(channel),
        prompt_hashes=json.dumps(dict(sorted(ann.prompt_hashes.items())), sort_keys=True),
        bytes=sum(len(v) for v in members.values()),
        cognition=status["cognition"],
        chains=status["chains"],
    )
    timing = timing_of(tl)
    timing["drawn"] = drawn_values(tl)
    if report is not None:
        timing["semantic"] = report.summary()
    return EncodedSample(shard=shard, key=key, members=members, row=row, timing=timing)


def drawn_values(tl) -> dict[str, list[float]]:
    """The numeric values drawn from a distribution for this sample (SPEC 12), by name."""
    out: dict[str, list[float]] = {}
    for p in tl.augmentation:
        if p.distribution in ("fixed", "derived") or p.distribution.startswith(("bernoulli", "choice")):
            continue
        if isinstance(p.value, int | float) and not isinstance(p.value, bool):
            out.setdefault(p.name, []).append(float(p.value))
    return out


class SerializeSample(beam.DoFn):
    def __init__(self, cfg, progress_total: int | None = None) -> None:
        self.cfg = cfg
        self.total = progress_total
        self.done = 0

    def setup(self) -> None:
        prepare_worker()

        self.tokenizer = load_tokenizer(self.cfg.serializer.tokenizer)
        # The caches are worker-local and on with tts.cache, like the TTS and alignment caches.
        self.flac_cache = (
            FlacCache(os.path.join(self.cfg.cache_dir(), "flac")) if self.cfg.tts.cache else None
        )

    def process(self, kv):
        seed_id, (ps, built) = kv
        n = self.cfg.shards.num_shards
        policy = self.cfg.on_internal_error
        shard = shard_of(sample_key(seed_id), n)
        with timed(STAGE):
            ser, rej = call_routed(
                STAGE, seed_id, serialize_one, ps, built, self.cfg, self.tokenizer, policy=policy
            )
        report = None
        if rej is None and self.cfg.semantic_check:
            with timed(SEMANTIC_STAGE):
                report, rej = call_routed(
                    SEMANTIC_STAGE,
                    seed_id,
                    semantic_one,
                    seed_id,
                    ser,
                    built,
                    self.cfg.serializer.lag_chunks,
                    policy=policy,
                )
        if rej is None:
            with timed(STAGE):
                enc, rej = call_routed(
                    STAGE,
                    seed_id,
                    encode_one,
                    ps,
                    built,
                    ser,
                    report,
                    self.cfg,
                    self.tokenizer,
                    n,
                    self.flac_cache,
                    policy=policy,
                )
        if rej is not None:
            yield beam.pvalue.TaggedOutput(REJECTS, (shard, rej))
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
                enc.row.duration_s,
                enc.row.n_chunks,
            )
        yield enc
