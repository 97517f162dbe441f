"""``espeak``: the embedded default TTS (libespeak-ng via ctypes), with native word start times.

Input: texts, a :class:`Speaker` whose ``engine_params`` hold ``variant`` (``m3``, ``f2``, ...),
``en_voice`` (``en-us``...), ``rate`` (words/min), ``pitch`` and ``range`` (0-100); ``lang`` is
``en`` or ``zh``. Chinese is romanized to tone-numbered pinyin and read by ``cmn-latn-pinyin``
(plain ``cmn`` would read the tone digits in English).
Output: :class:`SynthResult` at the configured rate, with one (word unit, start sample) pair per
word unit of :mod:`.text_units` that espeak reported a word event for.
Reject codes: ``tts_unsupported_lang``, ``tts_empty_text``.

Determinism: libespeak-ng keeps per-process voice state (e.g. the pitch-flutter phase) from one
call to the next, so with some variants the same text can differ by a few samples depending on
what the process synthesized before. Within one process the sequence of calls is reproducible;
across processes use :class:`.cache.CachedTTS` so an utterance is synthesized once.
"""

from __future__ import annotations

import numpy as np

from duplexloom.schemas import RejectError, Speaker

from . import espeak_isolated, espeak_lib
from .base import SynthResult, TTSBackend, TTSConfig, register_tts
from .resample import resample, rescale_samples
from .text_units import WordUnit, pinyin_syllables, word_units

ZH_VOICE = "cmn-latn-pinyin"
# Punctuation that should become a pause in the romanized Chinese input.
_ZH_PAUSE = {"，": ",", "、": ",", "；": ",", "：": ",", ",": ",", ";": ",", ":": ","}
_ZH_STOP = set("。！？!?.…")


class EspeakConfig(TTSConfig):
    gain: float = 1.0  # linear gain applied to the int16 -> float conversion
    # Synthesize every utterance from a pristine engine state (a forked child of a small zygote
    # process), because libespeak-ng's output otherwise depends on what it synthesized before;
    # about 6 ms more per utterance. Turn off only where byte-identical reruns do not matter.
    isolate_state: bool = True


def engine_input(text: str, lang: str) -> tuple[str, list[WordUnit], list[int]]:
    """The string espeak reads for ``text``, the word units, and for each unit the character index
    in that string where the unit starts (so word events map back to units)."""
    units = word_units(text, lang)
    if lang == "en":
        return text, units, [u.start_char for u in units]
    if lang != "zh":
        raise RejectError("tts_unsupported_lang", f"espeak backend speaks en and zh, not {lang!r}")
    syllables = pinyin_syllables(units, tones=True)
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for i, (unit, syl) in enumerate(zip(units, syllables, strict=True)):
        if i:
            gap = text[units[i - 1].end_char : unit.start_char]
            sep = " "
            if any(ch in _ZH_STOP for ch in gap):
                sep = ". "
            elif any(ch in _ZH_PAUSE for ch in gap):
                sep = ", "
            parts.append(sep)
            pos += len(sep)
        starts.append(pos)
        parts.append(syl)
        pos += len(syl)
    return "".join(parts), units, starts


def voice_name(speaker: Speaker, lang: str) -> str:
    p = speaker.engine_params
    base = ZH_VOICE if lang == "zh" else str(p.get("en_voice", "en-us"))
    variant = p.get("variant")
    return f"{base}+{variant}" if variant else base


@register_tts("espeak")
class EspeakTTS(TTSBackend):
    config_model = EspeakConfig
    requires = ()

    def synthesize(self, texts: list[str], speaker: Speaker, lang: str) -> list[SynthResult]:
        return [self._one(text, speaker, lang) for text in texts]

    def _one(self, text: str, speaker: Speaker, lang: str) -> SynthResult:
        engine_text, units, unit_starts = engine_input(text, lang)
        if not units:
            raise RejectError("tts_empty_text", f"no speakable words in {text[:40]!r}")
        p = speaker.engine_params
        synth = espeak_isolated.synth if self.config.isolate_state else espeak_lib.synth
        try:
            pcm, sr, events = synth(
                engine_text,
                voice_name(speaker, lang),
                rate=int(p.get("rate", 175)),
                pitch=int(p.get("pitch", 50)),
                pitch_range=int(p.get("range", 50)),
            )
        except espeak_isolated.EngineCrashed as e:
            raise RejectError("tts_engine_crash", str(e)) from None
        audio = pcm.astype(np.float32) * (self.config.gain / 32768.0)
        out_sr = self.config.sample_rate
        audio = resample(audio, sr, out_sr)
        # A word event belongs to the unit whose span holds its character position; the first
        # event inside a unit is its start (espeak may split a unit such as a number).
        starts: list[tuple[str, int]] = []
        ev_i = 0
        for k, unit in enumerate(units):
            lo = unit_starts[k]
            hi = unit_starts[k + 1] if k + 1 < len(units) else len(engine_text) + 1
            while ev_i < len(events) and events[ev_i][0] < lo:
                ev_i += 1
            if ev_i < len(events) and events[ev_i][0] < hi:
                t = min(rescale_samples(events[ev_i][2], sr, out_sr), max(len(audio) - 1, 0))
                starts.append((unit.text, t))
        return SynthResult(audio=audio, sample_rate=out_sr, word_starts_samples=starts)
