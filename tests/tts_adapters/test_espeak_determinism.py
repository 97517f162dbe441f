"""The same utterance must give the same samples whatever the process synthesized before it."""

import hashlib
import subprocess
import sys

from duplexloom.schemas import Speaker
from duplexloom.tts_adapters import get_tts

TEXT = "Please turn the heat up a little, it is cold in here."
SPEAKER = Speaker(
    id="a", role="assistant", display_name="A", engine_params={"en_voice": "en-gb-x-rp", "variant": "f4"}
)
OTHER = Speaker(
    id="b", role="user", display_name="B", engine_params={"variant": "m1", "rate": 140, "pitch": 80}
)


def _digest(tts, speaker, text, lang="en"):
    res = tts.synthesize([text], speaker, lang)[0]
    return hashlib.sha256(res.audio.tobytes()).hexdigest(), tuple(t for _, t in res.word_starts_samples)


def test_history_does_not_change_the_audio():
    tts = get_tts("espeak")
    first = _digest(tts, SPEAKER, TEXT)
    for other_text, lang in (("other words here", "en"), ("你好吗", "zh"), (TEXT, "en")):
        _digest(tts, OTHER, other_text, lang)
        assert _digest(tts, SPEAKER, TEXT) == first


def test_a_fresh_process_gives_the_same_bytes():
    code = (
        "import hashlib;from duplexloom.tts_adapters import get_tts;"
        "from tests.tts_adapters.test_espeak_determinism import SPEAKER, TEXT, _digest;"
        "print(_digest(get_tts('espeak'), SPEAKER, TEXT)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == _digest(get_tts("espeak"), SPEAKER, TEXT)[0]


def test_without_isolation_history_leaks_in():
    # Documents why isolation exists: the raw library drifts (if this starts failing, a newer
    # libespeak-ng fixed its state carry-over and the zygote could go).
    tts = get_tts("espeak", isolate_state=False)
    digests = set()
    for _ in range(4):
        digests.add(_digest(tts, SPEAKER, TEXT)[0])
        _digest(tts, OTHER, "other words here")
    assert len(digests) > 1


def test_a_child_that_dies_is_a_crash_and_the_zygote_goes_on():
    import pytest

    from duplexloom.tts_adapters import espeak_isolated

    # A child that dies before answering (as when libespeak-ng segfaults on some voice/text pairs):
    # here a malformed request makes it raise inside the child.
    with pytest.raises(espeak_isolated.EngineCrashed, match="crashed"):
        espeak_isolated._zygote.synth("only text")
    # The zygote survives and the next utterance is still right.
    tts = get_tts("espeak")
    assert _digest(tts, SPEAKER, TEXT) == _digest(tts, SPEAKER, TEXT)
