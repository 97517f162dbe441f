"""Timeline plot labels: the action channel's pieces are drawn whole when they fit, and a
control label token is never cut in the middle (the report showed "接收到完整内容<respon")."""

from __future__ import annotations

import numpy as np
import pytest

from duplexloom.qa.plots import piece_label, timeline_pngs
from duplexloom.schemas import ChunkRecord, SampleMeta, Speaker, Timeline, TokenizerInfo
from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.chunk import ActionPiece
from duplexloom.timeline.sample_codec import DecodedSample

SR, CHUNK = 16_000, 2_560
PHRASES = [
    "用户发言结束<response>",
    "接收到完整内容<response>",
    "检测到用户插话<interrupt>",
    "检测到附和语气<backchannel>",
]


def _sample(texts: list[str]) -> DecodedSample:
    n = 3 * len(texts) + 2
    spk = {role: Speaker(id=role, role=role, display_name=role) for role in ("user", "assistant")}
    actions = tuple(
        ActionObject(id=f"a{i}", name="response", offset_samples=3 * i * CHUNK) for i in range(len(texts))
    )
    meta = SampleMeta(
        key="k", family="interrupt", lang="zh", system_prompt="", speakers=spk,
        tokenizer=TokenizerInfo(name="builtin", kind="builtin"), run_seed=0, seed_id="k",
        timeline=Timeline(session_id="k", duration_samples=n * CHUNK, actions=actions),
    )  # fmt: skip
    chunks = [ChunkRecord(chunk=i, anchor="<vad_silence>") for i in range(n)]
    for i, text in enumerate(texts):
        piece = ActionPiece(action_id=f"a{i}", text=text, tokens=2, closes=True)
        chunks[3 * i] = ChunkRecord(chunk=3 * i, anchor="<vad_silence>", action_text=text, pieces=(piece,))
    audio = np.zeros(n * CHUNK, dtype=np.float32)
    return DecodedSample("k", meta, audio, audio, chunks, "")


def test_label_phrases_are_drawn_whole() -> None:
    (plot,) = timeline_pngs(_sample(PHRASES))
    assert plot.png.startswith(b"\x89PNG")
    assert list(plot.piece_labels) == PHRASES


@pytest.mark.parametrize("budget", [9.0, 12.0, 14.0])
def test_a_long_piece_is_shortened_before_its_label_token(budget: float) -> None:
    text = "检测到用户插话而且还说了很多别的话<interrupt>"
    short = piece_label(text, budget)
    assert short.endswith("<interrupt>") and "…" in short
    assert short.startswith(short.split("…")[0]) and text.startswith(short.split("…")[0])
    assert piece_label(text, 3.0) == "<interrupt>"  # no room for any phrase: the label token alone
    toolcall = '<|toolcall_begin|>{"function": "set_car_setting", "arguments": {}}'
    assert piece_label(toolcall, 8.0).startswith("⟨tc⟩{") and piece_label(toolcall, 8.0).endswith("…")
