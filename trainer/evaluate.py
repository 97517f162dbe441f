"""Held-out evaluation: per-channel / per-label loss and label timing.

Input: a trained :class:`train.Bundle` and held-out shard URLs. Output: a dict with
``loss`` (mean cross-entropy per channel ``all``/``T``/``A``/``action`` and per label, unweighted),
``label_timing`` per label (``true``, ``hit``, ``share``, ``emitted``, ``false_alarms``) and counts.

Label timing: the model is fed the true prefix (teacher forcing) and, at every action-channel
position of chunk ``c`` (the positions that predict the chunk's action tokens and its
``<|action_end|>``), it *emits* label ``L`` when its argmax is ``L``'s token. A true label (a
``response``/``interrupt``/``backchannel`` action of the timeline) is *hit* when the model emits
the same label in a chunk overlapping its acceptance window (seconds, :class:`EvalConfig`):

* response: ``[user end - 0.2 s, user end + 1.0 s]`` (``offset`` of the response action is the
  user's end; the 1 s covers the 0.32 s response gap plus the label phrase spilling into later
  chunks under the action budget);
* interrupt: ``[anchor - 1 s, anchor + 2 s]`` around the semantic interrupt anchor (the action's
  offset);
* backchannel: ``[feedback start - 0.2 s, feedback end + 2 s]`` where the feedback is the user
  ``backchannel`` utterance nearest the action's offset (the offset itself when there is none).

``share`` = hits / true labels; ``false_alarms`` = emitted chunks outside every window of that label.
Long samples are evaluated in consecutive windows of ``data.max_chunks`` chunks, so the prefix a
position sees starts at its window's first chunk.
"""

from __future__ import annotations

from typing import Any

import torch

from duplexloom.schemas.action import CONTROL_NAMES
from duplexloom.schemas.reject import RejectError
from duplexloom.schemas.tokens import LABEL_TOKEN_BY_NAME
from duplexloom.schemas.units import chunk_samples, seconds_to_samples
from duplexloom.timeline.sample_codec import DecodedSample

from .config import EvalConfig
from .data import ShardStream, collate, prepare, to_device_batch
from .loss import LossStats, channel_loss, weight_table
from .sequence import ACTION_CATS, Example, build_example


def label_windows(sample: DecodedSample, cfg: EvalConfig) -> list[tuple[str, int, int]]:
    """(label, first chunk, last chunk) of every control label's acceptance window."""
    tl = sample.meta.timeline
    sr = tl.sample_rate
    chunk = chunk_samples(sr, sample.meta.chunk_ms)
    n = len(sample.chunks)

    def s(x: float) -> int:
        return seconds_to_samples(x, sr)

    out = []
    for a in tl.actions:
        if a.name not in CONTROL_NAMES:
            continue
        t = a.offset_samples
        if a.name == "response":
            lo, hi = t - s(cfg.response_before_s), t + s(cfg.response_after_s)
        elif a.name == "interrupt":
            lo, hi = t - s(cfg.interrupt_before_s), t + s(cfg.interrupt_after_s)
        else:
            fb = [u for u in tl.utterances if u.speaker == "user" and u.kind == "backchannel"]
            start, end = t, t
            if fb:
                u = min(fb, key=lambda u: max(u.audio_start_samples - t, t - u.audio_end_samples, 0))
                start, end = u.audio_start_samples, u.audio_end_samples
            lo, hi = start - s(cfg.backchannel_before_s), end + s(cfg.backchannel_after_s)
        out.append((a.name, max(0, lo // chunk), min(n - 1, max(0, hi) // chunk)))
    return out


def emissions(
    logits: torch.Tensor, batch: dict[str, Any], label_ids: dict[str, int]
) -> list[set[tuple[str, int]]]:
    """Per batch row: the (label, chunk) pairs the model emits at action-channel positions."""
    pred = logits.argmax(-1)
    cats = batch["target_cat"]
    is_action = torch.zeros_like(cats, dtype=torch.bool)
    for c in ACTION_CATS:
        is_action |= cats == int(c)
    rows: list[set[tuple[str, int]]] = [set() for _ in range(pred.shape[0])]
    for name, tid in label_ids.items():
        b_idx, p_idx = torch.nonzero(is_action & (pred == tid), as_tuple=True)
        for b, p in zip(b_idx.tolist(), p_idx.tolist(), strict=True):
            rows[b].add((name, int(batch["target_chunk"][b, p])))
    return rows


def evaluate(bundle: Any, urls: list[str], device: torch.device | str = "cpu") -> dict[str, Any]:
    cfg = bundle.cfg
    device = torch.device(device)
    model = bundle.model.to(device)
    was_training = model.training
    model.eval()
    table = weight_table(cfg.loss)
    label_ids = {n: bundle.vocab.special_ids[t] for n, t in LABEL_TOKEN_BY_NAME.items()}
    stream = ShardStream(urls, cfg, bundle.codec, bundle.vocab, train=False, max_samples=cfg.eval.max_samples)
    stats = LossStats()
    windows: dict[str, list[tuple[str, int, int]]] = {}
    emitted: dict[str, set[tuple[str, int]]] = {}
    pending: list[Example] = []
    rejects: dict[str, int] = {}

    def flush() -> None:
        if not pending:
            return
        batch = to_device_batch(collate(pending), device)
        with torch.no_grad():
            logits = model(batch["input_ids"], batch["user_slot"], batch["user_feats"])
        _, st = channel_loss(logits, batch, table, bundle.vocab)
        stats.merge(st)
        for ex, em in zip(pending, emissions(logits.float(), batch, label_ids), strict=True):
            emitted[ex.key] |= em
        pending.clear()

    mc, max_pos = cfg.data.max_chunks, cfg.model.max_positions
    for sample in stream._samples():
        n = len(sample.chunks)
        try:
            codes, feats = prepare(sample, bundle.codec, cfg)
            exs = []
            c0 = 0
            while c0 < n:
                ex = build_example(sample, codes, feats, bundle.vocab, c0, min(n, c0 + mc), max_pos)
                exs.append(ex)
                c0 += ex.n_chunks
        except RejectError as e:
            rejects[e.code] = rejects.get(e.code, 0) + 1
            continue
        windows[sample.key] = label_windows(sample, cfg.eval)
        emitted[sample.key] = set()
        for ex in exs:
            pending.append(ex)
            if len(pending) >= cfg.eval.batch_size:
                flush()
    flush()
    if was_training:
        model.train()

    timing: dict[str, dict[str, float]] = {}
    for name in LABEL_TOKEN_BY_NAME:
        true = hit = n_emit = false_alarms = 0
        for key, wins in windows.items():
            mine = [(lo, hi) for lab, lo, hi in wins if lab == name]
            chunks = sorted(c for lab, c in emitted[key] if lab == name)
            true += len(mine)
            hit += sum(any(lo <= c <= hi for c in chunks) for lo, hi in mine)
            n_emit += len(chunks)
            false_alarms += sum(not any(lo <= c <= hi for lo, hi in mine) for c in chunks)
        timing[name] = {
            "true": true,
            "hit": hit,
            "share": hit / true if true else float("nan"),
            "emitted": n_emit,
            "false_alarms": false_alarms,
        }
    return {"samples": len(windows), "rejects": rejects, "loss": stats.means(), "label_timing": timing}


def flat_row(result: dict[str, Any]) -> dict[str, Any]:
    """One CSV row of an :func:`evaluate` result."""
    row: dict[str, Any] = {"samples": result["samples"]}
    row.update({f"loss_{k}": f"{v:.6f}" for k, v in result["loss"].items()})
    for name, t in result["label_timing"].items():
        row[f"{name}_share"] = f"{t['share']:.4f}"
        row[f"{name}_true"] = t["true"]
        row[f"{name}_false_alarms"] = t["false_alarms"]
    return row
