"""Small real shards for the trainer tests.

Each sample is a real two-track session built the way the Beam job builds one: a timeline with
word-timed user and assistant utterances and control-label actions (response, sometimes a
backchannel), serialized by ``timeline.serialize`` with the builtin tokenizer, audio synthesized
(one harmonic tone burst per word, pitch a stable function of the word, so the audio carries the
words) and written with ``sample_codec.shard_tar_bytes``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from duplexloom.schemas.action import ActionObject
from duplexloom.schemas.sample import SampleMeta
from duplexloom.schemas.speaker import Speaker
from duplexloom.schemas.timeline import Timeline
from duplexloom.schemas.utterance import TimedSpan, Utterance
from duplexloom.timeline.sample_codec import encode_sample, shard_tar_bytes
from duplexloom.timeline.serialize import render_trace, serialize
from duplexloom.timeline.tokenizer import load_tokenizer

SR = 16_000
CHUNK = SR * 160 // 1000
USER_PHRASES = ["turn the heat up", "play some music now", "open the window please", "what is the weather"]
ASSISTANT_PHRASES = ["okay done", "sure thing here it is", "right away", "it is sunny today"]


def _word_freq(word: str, base: float) -> float:
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=2).digest(), "big")
    return base * (1.0 + (h % 64) / 32.0)


def _render(track: np.ndarray, words: list[TimedSpan], base: float, rng: np.random.Generator) -> None:
    for w in words:
        n = w.end_samples - w.start_samples
        t = np.arange(n) / SR
        f = _word_freq(w.text, base)
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3))
        env = np.hanning(n)
        track[w.start_samples : w.end_samples] += (0.3 * env * tone + 0.01 * rng.standard_normal(n)).astype(
            np.float32
        )


def _words(text: str, start: int, rng: np.random.Generator) -> list[TimedSpan]:
    out, t = [], start
    for word in text.split():
        dur = int(SR * rng.uniform(0.18, 0.3))
        out.append(TimedSpan(text=word, start_samples=t, end_samples=t + dur))
        t += dur + int(SR * 0.04)
    return out


def make_sample(i: int, seed: int = 0) -> tuple[str, dict[str, bytes]]:
    rng = np.random.default_rng([seed, i])
    key = f"s{seed}x{i:04d}"
    user_text = USER_PHRASES[int(rng.integers(len(USER_PHRASES)))]
    asst_text = ASSISTANT_PHRASES[int(rng.integers(len(ASSISTANT_PHRASES)))]
    u_start = int(SR * rng.uniform(0.2, 0.6))
    uw = _words(user_text, u_start, rng)
    u_end = uw[-1].end_samples
    a_start = u_end + int(SR * 0.32)
    aw = _words(asst_text, a_start, rng)
    a_end = aw[-1].end_samples
    utts = [
        Utterance(
            id=f"{key}u0",
            speaker="user",
            lang="en",
            text=user_text,
            words=tuple(uw),
            audio_start_samples=u_start,
            audio_end_samples=u_end,
            turn_index=0,
        ),
        Utterance(
            id=f"{key}a0",
            speaker="assistant",
            lang="en",
            text=asst_text,
            words=tuple(aw),
            audio_start_samples=a_start,
            audio_end_samples=a_end,
            turn_index=0,
        ),
    ]
    actions = [ActionObject(id=f"{key}r0", name="response", offset_samples=u_end, provenance="test")]
    if i % 2 == 1:  # a backchannel while the assistant speaks
        bw = _words("mm hmm", a_start + (a_end - a_start) // 3, rng)
        utts.append(
            Utterance(
                id=f"{key}b0",
                speaker="user",
                lang="en",
                text="mm hmm",
                kind="backchannel",
                words=tuple(bw),
                audio_start_samples=bw[0].start_samples,
                audio_end_samples=bw[-1].end_samples,
            )
        )
        actions.append(
            ActionObject(
                id=f"{key}k0", name="backchannel", offset_samples=bw[-1].end_samples, provenance="test"
            )
        )
    end = max(a_end, utts[-1].audio_end_samples) + int(SR * 0.5)
    duration = -(-end // CHUNK) * CHUNK
    tl = Timeline(
        session_id=key,
        duration_samples=duration,
        family="dialogue",
        lang="en",
        utterances=tuple(utts),
        actions=tuple(actions),
    )
    tok = load_tokenizer(None)
    chunks = serialize(tl, tokenizer=tok)
    n = len(chunks) * CHUNK
    user, asst = np.zeros(n, np.float32), np.zeros(n, np.float32)
    _render(user, [w for u in utts if u.speaker == "user" for w in u.words], 140.0, rng)
    _render(asst, aw, 220.0, rng)
    speakers = {
        "user": Speaker(id="u1", role="user", display_name="User"),
        "assistant": Speaker(id="a1", role="assistant", display_name="Aria"),
    }
    meta = SampleMeta(
        key=key,
        family="dialogue",
        lang="en",
        system_prompt="",
        speakers=speakers,
        tokenizer=tok.info,
        run_seed=seed,
        seed_id=key,
        timeline=tl,
    )
    return key, encode_sample(meta, user, asst, chunks, render_trace(chunks))


def write_shards(root: Path, n_shards: int, per_shard: int, seed: int = 0) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(n_shards):
        samples = [make_sample(s * per_shard + j, seed) for j in range(per_shard)]
        p = root / f"{s:06d}.tar"
        p.write_bytes(shard_tar_bytes(samples))
        paths.append(p)
    return paths


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train shards (3 x 8 samples) and held-out shards (1 x 6 samples, another seed)."""
    root = tmp_path_factory.mktemp("shards")
    write_shards(root / "train", 3, 8, seed=0)
    write_shards(root / "heldout", 1, 6, seed=1)
    return root
