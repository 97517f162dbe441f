"""A small causal Transformer over the per-chunk token stream (SPEC sections 2, 3, 15).

Input: a batch from :func:`data.collate` (``input_ids``, ``user_slot``, ``user_feats``). Output:
logits ``(B, L, vocab)``; position ``p`` predicts the token at ``p + 1``.

User positions are inputs only: their embedding is the causal front end's projection of the 80 ms
log-mel feature (a per-feature MLP and a left-padded depthwise conv over past features only), so a
position never sees audio from the future. Attention is causal (``scaled_dot_product_attention``
with ``is_causal``); batches are right-padded, so padding never precedes a real position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class CausalFrontEnd(nn.Module):
    def __init__(self, in_dim: int, d_model: int, kernel: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Sequential(nn.Linear(in_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.kernel = kernel
        self.conv = nn.Conv1d(d_model, d_model, kernel, groups=d_model)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, F, in_dim) -> (B, F, d_model)
        h = self.proj(self.norm(feats))
        # Left padding only: output f depends on features f-k+1 .. f.
        c = self.conv(F.pad(h.transpose(1, 2), (self.kernel - 1, 0))).transpose(1, 2)
        return h + c


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff),
            nn.GELU(),
            nn.Linear(cfg.d_ff, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.out(att.transpose(1, 2).reshape(b, n, d))
        return x + self.ff(self.ln2(x))


class DuplexLM(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, user_dim: int):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.tok = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_positions, cfg.d_model)
        self.frontend = CausalFrontEnd(user_dim, cfg.d_model, cfg.frontend_kernel)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied: keeps the tiny model's parameter count small
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(
        self, input_ids: torch.Tensor, user_slot: torch.Tensor, user_feats: torch.Tensor
    ) -> torch.Tensor:
        b, n = input_ids.shape
        if n > self.cfg.max_positions:
            raise ValueError(f"sequence of {n} > max_positions {self.cfg.max_positions}")
        x = self.tok(input_ids)
        fe = self.frontend(user_feats).to(x.dtype)
        idx = user_slot.clamp_min(0).unsqueeze(-1).expand(-1, -1, fe.shape[-1])
        x = torch.where((user_slot >= 0).unsqueeze(-1), torch.gather(fe, 1, idx), x)
        x = x + self.pos(torch.arange(n, device=input_ids.device))[None]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
