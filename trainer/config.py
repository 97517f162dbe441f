"""Trainer configuration: one pydantic tree, read from YAML plus ``--set a.b=c`` overrides.

Input: a YAML file (optional) and dotted overrides. Output: a frozen :class:`TrainConfig`; the resolved
config is written beside the run (``<out>/config.yaml``) and saved in every checkpoint. A bad key or
value raises pydantic's ``ValidationError`` (a configuration bug, not a data reject).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from duplexloom.timeline.timing import BACKCHANNEL_WINDOW_S, INTERRUPT_WINDOW_S, RESPONSE_EARLY_S


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Cfg):
    shards: str = "out/demo/shards/*.tar"  # glob, brace list, or comma-separated list of tar paths
    eval_shards: str | None = None  # held-out shards; None = no evaluation during training
    tokenizer: str | None = None  # None/"builtin" or a tokenizer.json path; must match the shards' tokenizer
    batch_size: int = Field(default=8, ge=1)
    max_chunks: int = Field(default=48, ge=1)  # training window, in 160 ms chunks (random crop per epoch)
    shuffle_buffer: int = Field(default=64, ge=1)  # samples held by the streaming shuffle
    num_workers: int = Field(default=2, ge=0)


class FrontendConfig(_Cfg):
    """Log-mel frames of 40 ms (window = hop, no centering: frame i sees only its own samples)."""

    sample_rate: int = 16_000  # tracks at another rate are resampled to this one
    frame_ms: int = 40
    n_mels: int = Field(default=40, ge=8)


class CodecConfig(_Cfg):
    kind: Literal["kmeans", "external"] = "kmeans"
    codebook_size: int = Field(default=128, ge=2)
    fit_samples: int = Field(default=256, ge=1)  # samples read (in shard order) to fit k-means
    fit_frames: int = Field(default=50_000, ge=16)  # frames kept for k-means (subsampled, seeded)
    iters: int = Field(default=25, ge=1)
    member: str = "assistant.codes.npy"  # external codec: shard member holding int codes (n_chunks, 4)


class VocabConfig(_Cfg):
    # compact: only tokenizer ids seen in the training shards get an embedding (tiny models on CPU);
    # full: every tokenizer id (use when the ids must line up with a target backbone).
    mode: Literal["compact", "full"] = "compact"
    min_count: int = Field(default=1, ge=1)


class ModelConfig(_Cfg):
    d_model: int = Field(default=192, ge=8)
    n_layers: int = Field(default=4, ge=1)
    n_heads: int = Field(default=4, ge=1)
    d_ff: int = Field(default=768, ge=8)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_positions: int = Field(default=2048, ge=32)
    frontend_kernel: int = Field(default=3, ge=1)  # causal conv over user features (80 ms each)


class LossWeights(_Cfg):
    """Per-target weights of the channel-aware loss. User positions never carry loss."""

    marker: float = 0.0  # <|user_audio_begin|> ... <|assistant_audio_end|>: fully determined by layout
    text: float = 1.0  # T = a text token
    vad_silence: float = 0.2  # T = <vad_silence> (most chunks): kept low so silence does not dominate
    tts_pad: float = 0.5
    audio: float = 1.0  # A while the assistant speaks
    audio_silent: float = 0.2  # A in <vad_silence> chunks
    action: float = 1.0  # action text tokens (incl. tool-call markers)
    label: float = 2.0  # <response> <interrupt> <backchannel>
    action_end: float = 1.0  # <|action_end|> closing a chunk that carried action text
    action_end_empty: float = 0.2  # <|action_end|> of an empty action segment (most chunks)


class OptimConfig(_Cfg):
    lr: float = Field(default=3e-4, gt=0)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(default=100, ge=0)
    max_steps: int = Field(default=2000, ge=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float = 1.0


class EvalConfig(_Cfg):
    """Acceptance windows of label timing (seconds around the true event, see ``evaluate.py``)."""

    # Defaults are the data validators' windows (timeline/timing.py), so the model is held to the
    # same acceptance windows as the data; response_after_s is ours (the validator has no upper bound).
    response_before_s: float = RESPONSE_EARLY_S  # label may come 0.2 s before the user's end ...
    response_after_s: float = 1.0  # ... and up to 1 s after it
    interrupt_before_s: float = -INTERRUPT_WINDOW_S[0]  # around the semantic interrupt anchor
    interrupt_after_s: float = INTERRUPT_WINDOW_S[1]
    backchannel_before_s: float = -BACKCHANNEL_WINDOW_S[0]  # from feedback start - 0.2 s ...
    backchannel_after_s: float = BACKCHANNEL_WINDOW_S[1]  # ... to feedback end + 2 s
    max_samples: int = Field(default=200, ge=1)
    batch_size: int = Field(default=8, ge=1)


class RunConfig(_Cfg):
    device: str = "auto"  # auto = cuda when available, else cpu
    autocast: Literal["auto", "bf16", "off"] = "auto"  # auto = bf16 on CUDA, off on CPU
    log_every: int = Field(default=10, ge=1)
    ckpt_every: int = Field(default=500, ge=1)
    eval_every: int = Field(default=0, ge=0)  # 0 = evaluate only at the end (when eval_shards is set)
    progress: bool = True
    torch_threads: int = Field(default=0, ge=0)  # 0 = leave torch's default


class TrainConfig(_Cfg):
    seed: int = 0
    data: DataConfig = DataConfig()
    frontend: FrontendConfig = FrontendConfig()
    codec: CodecConfig = CodecConfig()
    vocab: VocabConfig = VocabConfig()
    model: ModelConfig = ModelConfig()
    loss: LossWeights = LossWeights()
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()
    run: RunConfig = RunConfig()


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``a.b=c`` sets ``tree["a"]["b"]`` to YAML-parsed ``c`` (so ``1e-3``, ``true``, ``[1, 2]`` work)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        node = tree
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {key}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return tree


BUNDLED = Path(__file__).resolve().parent / "configs"


def resolve_config_path(path: str | Path) -> Path:
    """A YAML path, or the name of a bundled config (``tiny``, ``demo``: ``trainer/configs/NAME.yaml``)."""
    p = Path(path)
    if not p.exists() and (BUNDLED / f"{p.name}.yaml").exists() and p.suffix == "":
        return BUNDLED / f"{p.name}.yaml"
    return p


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the YAML file (or bundled config name), then the ``--set`` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(resolve_config_path(path).read_text(encoding="utf-8"))
        tree = loaded or {}
    return TrainConfig.model_validate(apply_overrides(tree, list(overrides or [])))


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
