"""Shared real-audio fixtures for the timeline tests: annotations and synthesized, timed clips.

Clips come from the embedded espeak backend with its native word start times when it is available,
otherwise from numpy tone bursts with known word times (one burst per word unit).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from duplexloom.schemas import ClipUtterance, TimedSpan
from duplexloom.schemas.annotation import AnnotatedAction, AnnotatedTurn, Annotation
from duplexloom.timeline import augment as aug
from duplexloom.timeline.merge import Clip, SessionPlan

SR = 16_000


@lru_cache(maxsize=1)
def _backend():
    try:
        from duplexloom.tts_adapters import get_tts, load_library

        return get_tts("espeak"), load_library()
    except ImportError:  # MissingDependencyError is an ImportError: fall back to tones
        return None, None


def library():
    return _backend()[1]


def _tone_clip(text: str, lang: str, seed: int) -> tuple[np.ndarray, tuple[TimedSpan, ...]]:
    rng = np.random.default_rng(seed)
    lead, word, gap = int(0.05 * SR), int(0.22 * SR), int(0.06 * SR)
    words = aug.units(text, lang)
    n = lead + len(words) * (word + gap) + int(0.1 * SR)
    audio = np.zeros(n, np.float32)
    spans = []
    t = lead
    for i, w in enumerate(words):
        f = 180 + 40 * ((i + seed) % 7)
        audio[t : t + word] = 0.3 * np.sin(2 * np.pi * f * np.arange(word) / SR).astype(np.float32)
        audio[t : t + word] += 0.01 * rng.standard_normal(word).astype(np.float32)
        spans.append(TimedSpan(text=text[w.start_char : w.end_char], start_samples=t, end_samples=t + word))
        t += word + gap
    return audio, tuple(spans)


@lru_cache(maxsize=512)
def _synth(text: str, speaker_id: str, lang: str) -> tuple[np.ndarray, tuple[TimedSpan, ...]]:
    tts, lib = _backend()
    if tts is None:
        return _tone_clip(text, lang, len(text))
    r = tts.synthesize([text], lib.by_id(speaker_id), lang)[0]
    audio = np.asarray(r.audio, np.float32)
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    last = int(voiced[-1]) + 1 if voiced.size else audio.shape[0]
    starts = r.word_starts_samples or []
    spans = tuple(
        TimedSpan(
            text=w, start_samples=s, end_samples=max(s, starts[i + 1][1] if i + 1 < len(starts) else last)
        )
        for i, (w, s) in enumerate(starts)
    )
    return audio, spans


def make_clips(plan: SessionPlan) -> dict[str, Clip]:
    """Synthesize + time every utterance the plan asks for (the TTS + align step of the pipeline)."""
    clips = {}
    for u in plan.utterances_to_speak:
        spk = plan.user_speaker_id if u.speaker == "user" else plan.assistant_speaker_id
        audio, words = _synth(u.text, spk, u.lang)
        utt = ClipUtterance(
            id=u.id,
            speaker=u.speaker,
            lang=u.lang,
            text=u.text,
            kind=u.kind,
            words=words,
            n_samples=int(audio.shape[0]),
        )
        clips[u.id] = Clip(utterance=utt, audio=audio)
    return clips


def en_annotation(family: str = "dialogue", **kw) -> Annotation:
    turns = (
        AnnotatedTurn(
            role="user", text="Hi there, could you tell me what the weather will be like tomorrow?"
        ),
        AnnotatedTurn(
            role="assistant",
            text="Sure. Tomorrow will be sunny in the morning, with some clouds in the afternoon and a light breeze.",
        ),
        AnnotatedTurn(role="user", text="Great, and should I take an umbrella with me?"),
        AnnotatedTurn(
            role="assistant",
            text="No need for an umbrella, the chance of rain is very low, so you can leave it at home.",
        ),
    )
    base = dict(
        seed_id="en-weather-1",
        lang="en",
        family=family,
        turns=turns,
        interruptions=("wait, what about the weekend instead", "hold on, I meant the day after tomorrow"),
        backchannels=("mm-hmm", "okay"),
        fillers=("um", "well"),
    )
    base.update(kw)
    return Annotation(**base)


def zh_annotation(family: str = "dialogue", **kw) -> Annotation:
    turns = (
        AnnotatedTurn(role="user", text="你好，请帮我打开车窗，然后播放一些爵士音乐。", actions=()),
        AnnotatedTurn(role="assistant", text="好的，我已经为您打开车窗，正在为您搜索爵士音乐，请稍等一下。"),
    )
    base = dict(
        seed_id="zh-car-1",
        lang="zh",
        family=family,
        turns=turns,
        interruptions=("等一下，还是把车窗关上吧",),
        backchannels=("嗯嗯", "好的"),
        fillers=("嗯", "那个"),
    )
    base.update(kw)
    return Annotation(**base)


def tool_annotation(lang: str = "en", family: str = "toolcall") -> Annotation:
    if lang == "zh":
        user = "你好，请帮我打开车窗，然后播放一些爵士音乐。"
        acts = (
            AnnotatedAction(
                name="open_car_setting", anchor="打开车窗", parameters={"setting": "window"}, pattern="multi"
            ),
            AnnotatedAction(
                name="play_media",
                anchor="播放一些爵士音乐",
                parameters={"media_type": "playlist", "title": "爵士"},
                pattern="multi",
            ),
        )
        return zh_annotation(
            family, turns=(AnnotatedTurn(role="user", text=user, actions=acts),) + zh_annotation().turns[1:]
        )
    user = "Could you open the window, and then play some jazz music for me?"
    acts = (
        AnnotatedAction(
            name="open_car_setting",
            anchor="open the window",
            parameters={"setting": "window"},
            pattern="multi",
        ),
        AnnotatedAction(
            name="play_media",
            anchor="play some jazz",
            parameters={"media_type": "playlist", "title": "jazz"},
            pattern="multi",
        ),
    )
    turns = (
        AnnotatedTurn(role="user", text=user, actions=acts),
        AnnotatedTurn(
            role="assistant",
            text="Sure, I am opening the window now and looking for some relaxing jazz for you.",
        ),
    )
    return en_annotation(family, turns=turns)


def request_annotation() -> Annotation:
    """backchannel_action: an unrelated request made while the assistant is explaining something."""
    turns = (
        AnnotatedTurn(role="user", text="Can you explain how the hybrid engine in this car works?"),
        AnnotatedTurn(
            role="assistant",
            text="Of course. The car combines a petrol engine with an electric motor, and it switches between "
            "them automatically depending on your speed and the battery level.",
        ),
        AnnotatedTurn(
            role="user",
            text="Play some Beatles.",
            actions=(
                AnnotatedAction(
                    name="play_media",
                    anchor="play some beatles",
                    parameters={"media_type": "artist", "artist": "The Beatles"},
                    pattern="backchannel_action",
                ),
            ),
        ),
    )
    return en_annotation("toolcall", seed_id="en-request-1", turns=turns)


def test_clips_have_word_times_inside_audio():
    from duplexloom.timeline.config import TimelineConfig
    from duplexloom.timeline.merge import plan_session

    plan = plan_session(en_annotation("dialogue"), TimelineConfig(), 1, library=library())
    for uid, clip in make_clips(plan).items():
        assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
        assert clip.utterance.words, uid
        assert clip.utterance.words[-1].end_samples <= clip.audio.shape[0]
        starts = [w.start_samples for w in clip.utterance.words]
        assert starts == sorted(starts)
