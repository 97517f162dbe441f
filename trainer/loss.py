"""Channel-aware next-token loss and per-channel / per-label statistics.

Input: logits ``(B, L, V)`` and a batch (``targets``, ``target_cat``). Output: the weighted mean
cross-entropy (the training objective) and :class:`LossStats` — unweighted sums and counts per
channel (``T``, ``A``, ``action``) and per control label (``response``, ``interrupt``,
``backchannel``), so reports are comparable whatever the weights.

Each target's weight comes from its category (:class:`sequence.Cat`) through :class:`LossWeights`:
user positions and padding weigh 0; markers, silence anchors, silent audio and empty
``<|action_end|>`` are down-weighted by default so they do not dominate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from duplexloom.schemas.tokens import LABEL_TOKEN_BY_NAME

from .config import LossWeights
from .sequence import CHANNELS, Cat
from .vocab import ModelVocab


def weight_table(w: LossWeights) -> torch.Tensor:
    table = torch.zeros(len(Cat))
    table[Cat.MARKER] = w.marker
    table[Cat.T_TEXT] = w.text
    table[Cat.T_SILENCE] = w.vad_silence
    table[Cat.T_PAD] = w.tts_pad
    table[Cat.AUDIO] = w.audio
    table[Cat.AUDIO_SILENT] = w.audio_silent
    table[Cat.ACTION] = w.action
    table[Cat.LABEL] = w.label
    table[Cat.ACTION_END] = w.action_end
    table[Cat.ACTION_END_EMPTY] = w.action_end_empty
    return table


@dataclass
class LossStats:
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, total: float, count: int) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + total
        self.counts[name] = self.counts.get(name, 0) + count

    def merge(self, other: LossStats) -> None:
        for k in other.sums:
            self.add(k, other.sums[k], other.counts[k])

    def means(self) -> dict[str, float]:
        return {k: (self.sums[k] / self.counts[k]) if self.counts[k] else float("nan") for k in self.sums}


REPORTED = ("all", *CHANNELS, *LABEL_TOKEN_BY_NAME)


def channel_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], table: torch.Tensor, vocab: ModelVocab
) -> tuple[torch.Tensor, LossStats]:
    targets, cats = batch["targets"], batch["target_cat"]
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view_as(targets)
    w = table.to(ce.device)[cats]
    loss = (ce * w).sum() / w.sum().clamp_min(1e-8)
    stats = LossStats()
    with torch.no_grad():
        ce_d = ce.detach()
        trained = w > 0
        stats.add("all", float(ce_d[trained].sum()), int(trained.sum()))
        for name, members in CHANNELS.items():
            m = torch.zeros_like(trained)
            for c in members:
                m |= cats == int(c)
            stats.add(name, float(ce_d[m].sum()), int(m.sum()))
        for name, tok in LABEL_TOKEN_BY_NAME.items():
            m = (targets == vocab.special_ids[tok]) & (cats == int(Cat.LABEL))
            stats.add(name, float(ce_d[m].sum()), int(m.sum()))
    return loss, stats
