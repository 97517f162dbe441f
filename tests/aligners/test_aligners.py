"""Aligners on real espeak-ng speech: the bundled tiny model, rejects, mms_fa / wav2vec2_local code
paths with small randomly initialized models, and the training script's determinism."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from duplexloom.aligners import Alignment, get_aligner
from duplexloom.aligners.base import align_frames
from duplexloom.aligners.romanize import text_to_units
from duplexloom.schemas import RejectError
from duplexloom.tts_adapters import get_tts, load_library
from duplexloom.tts_adapters.text_units import word_units

SR = 16_000


@pytest.fixture(scope="module")
def tiny():
    return get_aligner("tiny")


@pytest.fixture(scope="module")
def speech():
    tts = get_tts("espeak", sample_rate=SR)
    lib = load_library()

    def make(text, lang, speaker=0, sr=SR):
        t = tts if sr == SR else get_tts("espeak", sample_rate=sr)
        return t.synthesize([text], lib.assistants[speaker], lang)[0]

    return make


@pytest.mark.parametrize(
    "text,lang",
    [
        ("Please turn the heat up a little, it is cold in here.", "en"),
        ("请把空调温度调高一点，这里有点冷。", "zh"),
    ],
)
def test_tiny_words_match_native_times(tiny, speech, text, lang):
    res = speech(text, lang, speaker=2)
    al = tiny.align(res.audio, SR, text, lang)
    assert isinstance(al, Alignment) and al.sample_rate == SR
    assert [w.text for w in al.words] == [u.text for u in word_units(text, lang)]
    for a, b in zip(al.words, al.words[1:], strict=False):
        assert a.start_samples < a.end_samples <= b.start_samples
    assert al.words[-1].end_samples <= len(res.audio)
    native = dict(enumerate(t for _, t in res.word_starts_samples))
    err_ms = [abs(w.start_samples - native[i]) / SR * 1000 for i, w in enumerate(al.words)]
    assert np.median(err_ms) < 40, err_ms
    assert 0.3 < al.confidence <= 1.0
    # Characters tile their word.
    if lang == "zh":
        assert [c.text for c in al.chars] == [w.text for w in al.words]
    else:
        assert "".join(c.text for c in al.chars) == "".join(w.text for w in al.words)
        for c in al.chars:
            assert c.start_samples <= c.end_samples


def _assert_words_end_where_their_sound_ends(audio, words, sr=SR):
    """SPEC section 7: the frame before each word's end is speech, and no speech lies between
    a word's end and the next word's start (or the end of the audio)."""
    from duplexloom.aligners.energy import HOP_MS, speech_mask

    mask = speech_mask(audio, sr)
    hop = sr * HOP_MS // 1000
    for k, w in enumerate(words):
        nxt = words[k + 1].start_samples if k + 1 < len(words) else audio.size
        assert mask[(w.end_samples - 1) // hop], (w.text, w.end_samples / sr)
        assert not mask[-(-w.end_samples // hop) : nxt // hop].any(), (w.text, w.end_samples / sr, nxt / sr)


@pytest.mark.parametrize(
    "text,lang,speaker",
    [
        ("我们很久没有见面了，你最近怎么样？", "zh", 0),  # long finals (久, 样), a comma pause
        ("请把空调温度调高一点，这里有点冷。", "zh", 0),
        ("He stops to buy fish. Then he goes home.", "en", 0),  # unvoiced endings, a full stop
        ("He stops to buy fish. Then he goes home.", "en", 3),
    ],
)
def test_tiny_word_ends_are_where_the_sound_ends(tiny, speech, text, lang, speaker):
    from duplexloom.aligners.energy import coverage

    res = speech(text, lang, speaker=speaker)
    al = tiny.align(res.audio, SR, text, lang)
    _assert_words_end_where_their_sound_ends(res.audio, al.words)
    cov = coverage(res.audio, SR, [(w.start_samples, w.end_samples) for w in al.words])
    assert cov.speech_in_spans >= 0.98 and cov.mostly_silent_words == 0, cov
    # Before this fix "fish" ended ~80 ms and the final words ~100 ms before their sound did.
    by_text = {w.text: w for w in al.words}
    for word in ("fish", "home", "样", "冷"):
        if word in by_text:
            w = by_text[word]
            assert (w.end_samples - w.start_samples) / SR > 0.25, (word, w)


def test_times_follow_the_input_rate(tiny, speech):
    text = "the quick brown fox jumps over the lazy dog"
    a = tiny.align(speech(text, "en").audio, SR, text, "en")
    b_res = speech(text, "en", sr=24_000)
    b = tiny.align(b_res.audio, 24_000, text, "en")
    assert b.sample_rate == 24_000
    for wa, wb in zip(a.words, b.words, strict=True):
        assert abs(wa.start_samples / SR - wb.start_samples / 24_000) < 0.025


def test_wrong_text_has_lower_confidence(tiny, speech):
    text = "open the window on the left side please"
    audio = speech(text, "en").audio
    right = tiny.align(audio, SR, text, "en").confidence
    wrong = tiny.align(audio, SR, "banana gymnast sixteen quartz vowel", "en").confidence
    assert wrong < right


def test_rejects(tiny, speech):
    audio = speech("hello world", "en").audio

    def code(*args):
        with pytest.raises(RejectError) as e:
            tiny.align(*args)
        return e.value.code

    assert code(np.zeros(0, np.float32), SR, "hello", "en") == "align_empty_audio"
    assert code(np.zeros(SR, np.float32), SR, "hello", "en") == "align_silent_audio"
    assert code(audio, SR, " ... ", "en") == "align_empty_text"
    assert code(audio, SR, "hello 2024", "en") == "align_unrepresentable"
    assert code(audio[:3200], SR, "hello world " * 10, "en") == "align_text_too_long"
    strict = get_aligner("tiny", min_confidence=0.999)
    with pytest.raises(RejectError) as e:
        strict.align(audio, SR, "zebra", "en")
    assert e.value.code == "align_low_confidence"


def test_align_batch_routes_rejects_in_place(tiny, speech):
    audio = speech("good night", "en").audio
    out = tiny.align_batch([(audio, SR, "good night", "en"), (np.zeros(SR, np.float32), SR, "x", "en")])
    assert isinstance(out[0], Alignment) and isinstance(out[1], RejectError)
    assert out[1].code == "align_silent_audio"


def _small_wav2vec2(aux: int):
    import torch
    import torchaudio

    torch.manual_seed(0)
    # Same family and feature extractor strides as MMS_FA (~300M params), far smaller encoder.
    params = dict(
        extractor_mode="layer_norm",
        extractor_conv_layer_config=[
            (32, 10, 5),
            (32, 3, 2),
            (32, 3, 2),
            (32, 3, 2),
            (32, 3, 2),
            (32, 2, 2),
            (32, 2, 2),
        ],
        extractor_conv_bias=True,
        encoder_embed_dim=48,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4,
        encoder_num_layers=2,
        encoder_num_heads=4,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=96,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=True,
        encoder_layer_drop=0.0,
        aux_num_out=aux,
    )
    return torchaudio.models.wav2vec2_model(**params).eval(), params


def _assert_final_word_ends_at_the_sound_end(audio, words):
    from duplexloom.aligners.energy import HOP_MS, speech_mask

    hop = SR * HOP_MS // 1000
    sound_end = (int(np.flatnonzero(speech_mask(audio, SR))[-1]) + 1) * hop
    assert words[-1].start_samples < sound_end
    assert abs(words[-1].end_samples - sound_end) <= hop, (words[-1], sound_end)


def test_mms_fa_code_path_with_small_random_model(speech):
    from torchaudio.pipelines import MMS_FA

    from duplexloom.aligners.mms_fa import MmsFaAligner, MmsFaConfig

    # The real bundle's architecture parameters, to prove the small model is the same family.
    assert MMS_FA._params["aux_num_out"] == len(MMS_FA.get_labels(star=None))
    model, _ = _small_wav2vec2(len(MMS_FA.get_labels(star=None)))
    aligner = MmsFaAligner(MmsFaConfig(), model=model)
    text = "你好世界"
    res = speech(text, "zh")
    al = aligner.align(res.audio, SR, text, "zh")
    assert [w.text for w in al.words] == list(text)
    assert al.words[-1].end_samples <= len(res.audio)
    # Even a random model's last word ends where the utterance's sound ends (energy, not spikes).
    _assert_final_word_ends_at_the_sound_end(res.audio, al.words)
    lp = aligner.log_probs(res.audio)
    assert lp.shape[1] == 28 and abs(lp.shape[0] - len(res.audio) / 320) <= 2
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, rtol=1e-4)


def test_mms_fa_loads_local_weights_the_way_the_bundle_does(tmp_path, speech, monkeypatch):
    """The Dataflow path (weights baked into the image or cached per worker, no network) with a
    stand-in checkpoint: published layout (fairseq's 3 unused label rows still in ``aux``), a
    small architecture in params.json."""
    import torch
    from torchaudio.pipelines import MMS_FA

    from duplexloom.aligners.base import model_fingerprint
    from duplexloom.aligners.mms_fa import MODEL_DIR_ENV

    n_labels = len(MMS_FA.get_labels(star=None))
    published, params = _small_wav2vec2(n_labels + 3)
    state = published.state_dict()
    torch.save(state, tmp_path / "model.pt")
    (tmp_path / "params.json").write_text(json.dumps({**params, "aux_num_out": n_labels}))
    aligner = get_aligner("mms_fa", model_dir=str(tmp_path))
    kept = [i for i in range(n_labels + 3) if i not in (1, 2, 3)]
    loaded = dict(aligner.model.named_parameters())
    aux = next(v for k, v in loaded.items() if k.endswith("aux.weight"))
    np.testing.assert_array_equal(aux.detach().numpy(), state["aux.weight"][kept].numpy())
    res = speech("turn left", "en")
    al = aligner.align(res.audio, SR, "turn left", "en")
    assert [w.text for w in al.words] == ["turn", "left"]
    np.testing.assert_allclose(np.exp(aligner.log_probs(res.audio)).sum(axis=1), 1.0, rtol=1e-4)
    # The environment variable (what the Dockerfile sets) finds the same weights.
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    by_env = get_aligner("mms_fa")
    np.testing.assert_allclose(by_env.log_probs(res.audio), aligner.log_probs(res.audio), rtol=1e-5)
    first = model_fingerprint("mms_fa")
    assert first.startswith("mms_fa:local-") and first == model_fingerprint("mms_fa", model_dir=str(tmp_path))
    (tmp_path / "params.json").write_text(json.dumps({**params, "aux_num_out": n_labels}) + " ")
    assert model_fingerprint("mms_fa") != first
    (tmp_path / "model.pt").unlink()
    with pytest.raises(FileNotFoundError):
        get_aligner("mms_fa", model_dir=str(tmp_path))


def test_wav2vec2_local_torchaudio_layout(tmp_path, speech):
    import torch

    from duplexloom.aligners.tiny_model import LABELS

    model, params = _small_wav2vec2(len(LABELS))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps({"wav2vec2": params, "labels": list(LABELS)}))
    aligner = get_aligner("wav2vec2_local", model_dir=str(tmp_path))
    res = speech("turn left", "en")
    al = aligner.align(res.audio, SR, "turn left", "en")
    assert [w.text for w in al.words] == ["turn", "left"]
    _assert_final_word_ends_at_the_sound_end(res.audio, al.words)
    np.testing.assert_allclose(aligner.log_probs(res.audio), aligner.log_probs(res.audio))
    with pytest.raises(FileNotFoundError):
        get_aligner("wav2vec2_local", model_dir=str(tmp_path / "nothing"))


def test_path_search_on_synthetic_log_probs():
    # A hand-made emission: "ab" at frames 2-3, blank elsewhere, "ba" at frames 7-8.
    from duplexloom.aligners.tiny_model import LABELS

    idx = {lab: i for i, lab in enumerate(LABELS)}
    lp = np.full((12, len(LABELS)), np.log(1e-4), np.float32)
    lp[:, 0] = np.log(0.99)
    for f, lab in ((2, "a"), (3, "b"), (7, "b"), (8, "a")):
        lp[f] = np.log(1e-4)
        lp[f, idx[lab]] = np.log(0.99)
    units = text_to_units("ab ba", "en", LABELS)
    path = align_frames(lp, units, LABELS)
    assert path.label_starts == [[2, 3], [7, 8]]
    assert path.unit_ends[0] in (4, 5, 6) and path.unit_ends[1] in (9, 10, 11)


def test_bundled_weights_are_small_and_match_metadata():
    from duplexloom.aligners.tiny import MODEL_DIR

    blob = (MODEL_DIR / "tiny_ctc.pt").read_bytes()
    meta = json.loads((MODEL_DIR / "tiny_ctc.json").read_text())
    assert len(blob) <= 5 * 1024 * 1024
    assert hashlib.sha256(blob).hexdigest() == meta["weights_sha256"]


@pytest.mark.slow
def test_training_script_is_deterministic(tmp_path):
    # Two fresh processes: espeak-ng carries voice state (flutter phase) from one call to the
    # next inside a process, so the script is deterministic per run, not per call.
    args = ["--steps", "3", "--utterances", "16", "--batch", "4", "--calibration", "4", "--channels", "16"]
    args += ["--gru-hidden", "8", "--threads", "1"]
    for name in ("a", "b"):
        cmd = [sys.executable, "-m", "duplexloom.tools.aligner_model", *args, "--out", str(tmp_path / name)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    a = (tmp_path / "a" / "tiny_ctc.pt").read_bytes()
    assert a == (tmp_path / "b" / "tiny_ctc.pt").read_bytes()
    meta = json.loads((tmp_path / "a" / "tiny_ctc.json").read_text())
    assert meta["training"]["steps"] == 3 and meta["weights_sha256"] == hashlib.sha256(a).hexdigest()
    aligner = get_aligner("tiny", model_dir=str(tmp_path / "a"))
    assert aligner.labels[0] == "<blank>"
