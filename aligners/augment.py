"""Training-time augmentation that makes one TTS engine sound like many rooms, microphones, lines
and speakers (for :mod:`.train_tiny`).

Input: float32 mono audio at ``rate`` and a seeded ``numpy.random.Generator``. Output: the
augmented audio and the factor by which its time axis was stretched (word times scale by it).
Every draw comes from the generator, so a seeded generator gives the same audio (codecs included:
their encoders are deterministic). Pure numpy + soundfile; no reject codes.

The chain (each step with its own probability, see :data:`CHAIN`): tempo-and-formant warp
(resampling, the waveform form of vocal-tract-length perturbation), EQ (a random smooth
spectral curve) and band limits (telephone, low-pass, high-pass), room reverb (a synthetic
exponentially decaying impulse response, RT60 0.1-0.9 s), noise (white, pink or brown, 5-40 dB
SNR), a codec round trip (MP3, Ogg Vorbis, Opus, 8 kHz mu-law, GSM 6.10; the codec's delay is
measured and removed so word times stay true), and level (-35 to 0 dBFS peak).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited resampling in the frequency domain (fast for any ratio; augmentation only)."""
    n = audio.size
    m = int(round(n * sr_to / sr_from))
    if m == n or n == 0:
        return np.asarray(audio, dtype=np.float32).copy()
    spec = np.fft.rfft(audio.astype(np.float64))
    keep = min(spec.size, m // 2 + 1)
    out = np.zeros(m // 2 + 1, np.complex128)
    out[:keep] = spec[:keep]
    return (np.fft.irfft(out, m) * (m / n)).astype(np.float32)


CODECS = ("mp3", "vorbis", "opus", "ulaw8k", "gsm8k")
NOISES = ("white", "pink", "brown")


@dataclass(frozen=True)
class Chain:
    """Probabilities of each step."""

    warp: float = 0.5
    eq: float = 0.5
    band: float = 0.3
    reverb: float = 0.35
    noise: float = 0.7
    codec: float = 0.3


CHAIN = Chain()


def warp(audio: np.ndarray, rate: int, percent: int) -> np.ndarray:
    """Play ``audio`` ``1 + percent/100`` times faster (formants and pitch up, duration down):
    resample from ``rate * (100 + percent) / 100`` to ``rate`` (whole percents keep the
    resampler's kernel small)."""
    return resample(audio, rate * (100 + percent) // 100, rate)


def spectral_curve(audio: np.ndarray, rate: int, gains_db: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
    """Filter ``audio`` by the gain curve through (``freqs_hz``, ``gains_db``) (linear in log
    frequency, zero phase)."""
    n = audio.size
    spec = np.fft.rfft(audio.astype(np.float64))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    logf = np.log(np.maximum(f, 1.0))
    g = np.interp(logf, np.log(freqs_hz), gains_db)
    return np.fft.irfft(spec * 10 ** (g / 20), n).astype(np.float32)


def random_eq(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    freqs = np.geomspace(60, rate / 2, 8)
    return spectral_curve(audio, rate, rng.uniform(-10, 10, freqs.size), freqs)


def band_limit(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(3))
    lo, hi = 1.0, rate / 2
    if kind == 0:  # telephone
        lo, hi = rng.uniform(200, 400), rng.uniform(3200, 3600)
    elif kind == 1:
        hi = rng.uniform(2500, 6500)
    else:
        lo = rng.uniform(150, 500)
    freqs = np.array([1.0, lo * 0.5, lo, hi, min(hi * 1.5, rate / 2 - 1), rate / 2])
    gains = np.array([-40.0 if lo > 1 else 0.0, -25.0 if lo > 1 else 0.0, 0.0, 0.0, -40.0, -60.0])
    if hi >= rate / 2:
        gains[-2:] = 0.0
    order = np.argsort(freqs)
    return spectral_curve(audio, rate, gains[order], freqs[order])


def room_impulse(rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise
    (RT60 0.1-0.9 s) starting 1-10 ms later, at a random direct-to-reverb ratio."""
    rt60 = rng.uniform(0.1, 0.9)
    n = int(rt60 * rate)
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[: int(rng.uniform(0.001, 0.01) * rate)] = 0.0
    tail *= 10 ** (-rng.uniform(0, 15) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    return tail


def reverb(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with :func:`room_impulse`; the output keeps the input's length and time origin."""
    ir = room_impulse(rate, rng)
    m = audio.size + ir.size - 1
    size = 1 << (m - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(ir, size), size)[: audio.size]
    return out.astype(np.float32)


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spec /= f ** (0.5 if kind == "pink" else 1.0)
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def add_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    snr_db = rng.uniform(5, 40)
    noise = colored_noise(audio.size, NOISES[int(rng.integers(len(NOISES)))], rng)
    return (audio + noise * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def _codec_bytes(audio: np.ndarray, rate: int, codec: str) -> tuple[np.ndarray, int]:
    fmt, subtype, codec_rate = {
        "mp3": ("MP3", "MPEG_LAYER_III", rate),
        "vorbis": ("OGG", "VORBIS", rate),
        "opus": ("OGG", "OPUS", 16_000 if rate == 16_000 else 48_000),
        "ulaw8k": ("WAV", "ULAW", 8_000),
        "gsm8k": ("WAV", "GSM610", 8_000),
    }[codec]
    x = resample(audio, rate, codec_rate) if codec_rate != rate else audio
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), codec_rate, format=fmt, subtype=subtype)
    buf.seek(0)
    y, sr = sf.read(buf, dtype="float32", always_2d=False)
    return (resample(y, sr, rate) if sr != rate else y), rate


def codec_round_trip(audio: np.ndarray, rate: int, codec: str, max_lag: int = 4096) -> np.ndarray:
    """Encode and decode ``audio`` with ``codec``, removing the codec's delay (the lag of the best
    cross-correlation within ``max_lag`` samples); same length as the input."""
    y, _ = _codec_bytes(audio, rate, codec)
    n = audio.size
    m = n + y.size
    size = 1 << (m - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(audio, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[int(np.argmax(xc[lags]))])
    out = np.zeros(n, np.float32)
    src = y[max(lag, 0) :]
    dst0 = max(-lag, 0)
    k = min(n - dst0, src.size)
    out[dst0 : dst0 + k] = src[:k]
    return out


def augment(
    audio: np.ndarray, rate: int, rng: np.random.Generator, chain: Chain = CHAIN
) -> tuple[np.ndarray, float]:
    """The augmented audio and its time scale (new duration / old duration)."""
    x = np.asarray(audio, dtype=np.float32)
    scale = 1.0
    if rng.random() < chain.warp:
        x = warp(x, rate, int(rng.integers(-12, 13)))
        scale = x.size / max(audio.size, 1)
    if rng.random() < chain.eq:
        x = random_eq(x, rate, rng)
    if rng.random() < chain.band:
        x = band_limit(x, rate, rng)
    if rng.random() < chain.reverb:
        x = reverb(x, rate, rng)
    if rng.random() < chain.noise:
        x = add_noise(x, rng)
    peak = float(np.max(np.abs(x))) + 1e-9
    x = x * np.float32(10 ** (-rng.uniform(0.5, 35) / 20) / peak)
    if rng.random() < chain.codec:
        x = codec_round_trip(x, rate, CODECS[int(rng.integers(len(CODECS)))])
    return x.astype(np.float32), scale
