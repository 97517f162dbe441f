"""Serializer throughput: chunks per second on one core (target >= 20,000, i.e. one hour of session
in <= 1.2 s). Builds a synthetic one-hour zh/en session with both speakers talking, tool calls,
labels, thinking notes and dual-side ASR, then times ``serialize`` (with and without the input
check), ``render_trace`` and ``check_chunks``, each as the best of a few runs."""

from __future__ import annotations

import time

import numpy as np

from duplexloom.schemas import ActionObject, TimedSpan, Timeline, Utterance
from duplexloom.timeline.clock import ChunkGrid
from duplexloom.timeline.serialize import render_trace, serialize
from duplexloom.timeline.tokenizer import load_tokenizer
from duplexloom.timeline.validate import check_chunks

TARGET_CHUNKS_PER_S = 20_000
ZH = ["明白", "好的", "我们", "导航", "到", "公司", "空调", "调到", "二十六度", "谢谢"]
EN = ["turn", "the", "heat", "up", "please", "navigate", "home", "and", "play", "jazz"]


def one_hour_session(lang: str, seconds: int = 3600, seed: int = 0) -> Timeline:
    rng = np.random.default_rng(seed)
    sr, grid = 16_000, ChunkGrid()
    vocab = ZH if lang == "zh" else EN
    utts, actions = [], []
    t, turn = 0, 0
    end = seconds * sr
    while t < end - 10 * sr:
        for speaker in ("user", "assistant"):
            words, w_t = [], t
            for _ in range(int(rng.integers(3, 12))):
                word = str(rng.choice(vocab))
                # About 5 characters/s in Chinese and 3 words/s in English: the anchor text fits the audio.
                per_unit = rng.uniform(0.18, 0.26) if lang == "zh" else rng.uniform(0.25, 0.4)
                dur = int(per_unit * sr * (len(word) if lang == "zh" else 1))
                words.append(TimedSpan(text=word, start_samples=w_t, end_samples=w_t + dur))
                w_t += dur
            text = ("" if lang == "zh" else " ").join(w.text for w in words)
            utts.append(
                Utterance(
                    id=f"{speaker[0]}{turn}",
                    speaker=speaker,
                    lang=lang,
                    text=text,
                    words=tuple(words),
                    audio_start_samples=t,
                    audio_end_samples=w_t,
                )
            )
            if speaker == "user":
                actions.append(
                    ActionObject(
                        id=f"t{turn}",
                        name="set_car_setting",
                        planning="用户觉得冷" if lang == "zh" else "the user is cold",
                        parameters={"setting": "AC_temperature", "value": "26"},
                        offset_samples=w_t,
                    )
                )
                actions.append(ActionObject(id=f"r{turn}", name="response", offset_samples=w_t))
                actions.append(
                    ActionObject(
                        id=f"k{turn}",
                        name="think",
                        text="温度偏低" if lang == "zh" else "too cold",
                        offset_samples=t,
                    )
                )
            t = w_t + int(0.32 * sr) + grid.chunk_len
        turn += 1
    return Timeline(
        session_id=f"bench-{lang}",
        duration_samples=end,
        family="toolcall",
        lang=lang,
        utterances=tuple(utts),
        actions=tuple(actions),
    )


def _best(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    tok = load_tokenizer(None)
    for lang in ("zh", "en"):
        tl = one_hour_session(lang)
        n = ChunkGrid().n_chunks(tl.duration_samples)
        t_full, chunks = _best(lambda tl=tl: serialize(tl, tokenizer=tok, asr_sides=("user", "assistant")))
        t_nochk, _ = _best(
            lambda tl=tl: serialize(tl, tokenizer=tok, asr_sides=("user", "assistant"), check=False)
        )
        t_trace, _ = _best(lambda chunks=chunks: render_trace(chunks))
        t_val, violations = _best(lambda tl=tl, chunks=chunks: check_chunks(tl, chunks, tok, 10), repeats=1)
        busy = sum(1 for c in chunks if c.action_text) / len(chunks)
        print(
            f"[{lang}] 1 h session: {n} chunks, {len(tl.actions)} actions, {busy:.0%} chunks carry action text, "
            f"{len(violations)} violations"
        )
        rate = len(chunks) / t_full
        print(
            f"[{lang}] serialize (incl. input check): {t_full:.3f} s -> {rate:,.0f} chunks/s/core "
            f"(target >= {TARGET_CHUNKS_PER_S:,}; ratio {rate / TARGET_CHUNKS_PER_S:.2f}x)"
        )
        print(
            f"[{lang}] serialize (no input check):   {t_nochk:.3f} s -> {len(chunks) / t_nochk:,.0f} chunks/s/core"
        )
        print(f"[{lang}] render_trace: {t_trace:.3f} s; check_chunks: {t_val:.3f} s")


if __name__ == "__main__":
    main()
