"""The align stage's quality guard on real espeak-ng speech and the bundled aligner: a good alignment
ships with its scores, a poor one becomes an ``align_poor`` reject carrying the numbers (also on a
cache hit), and the scores' distribution is combined in a real Beam pipeline."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from duplexloom.pipelines.align import (
    Aligned,
    AlignerModelHandler,
    AlignQuality,
    AlignScores,
    check_quality,
)
from duplexloom.pipelines.config import AlignGuardConfig
from duplexloom.pipelines.tts import Spoken
from duplexloom.schemas import RejectError
from duplexloom.schemas.clip import AlignedClip, SpeakRequest
from duplexloom.tts_adapters import get_tts, load_library

SR = 16_000
TEXT = "Please turn the heat up a little, it is cold in here."


def test_check_quality_names_every_missed_bar_with_the_numbers():
    guard = AlignGuardConfig(min_confidence=0.1).model_dump()
    check_quality(AlignScores(0.99, 0.0, 0.6), guard)  # passes: no exception
    check_quality(AlignScores(0.99, 0.0, 0.01), AlignGuardConfig().model_dump())  # confidence bar off
    with pytest.raises(RejectError) as e:
        check_quality(AlignScores(0.62, 0.25, 0.05), guard)
    assert e.value.code == "align_poor"
    assert "speech_in_spans 0.620 < 0.9" in e.value.detail
    assert "mostly_silent_share 0.250 > 0.2" in e.value.detail
    assert "confidence 0.050 < 0.1" in e.value.detail
    assert e.value.extra == {"speech_in_spans": 0.62, "mostly_silent_share": 0.25, "confidence": 0.05}
    check_quality(AlignScores(0.0, 1.0, 0.0), {**guard, "enabled": False})


@pytest.fixture(scope="module")
def spoken():
    tts = get_tts("espeak", sample_rate=SR)
    speaker = load_library().assistants[0]
    res = tts.synthesize([TEXT], speaker, "en")[0]

    def make(text: str) -> Spoken:
        item = SpeakRequest(
            session_id="s1", utterance_id="s1-u0", role="user", lang="en", text=text, speaker=speaker
        )
        return Spoken(item, res)

    return make


def test_guard_ships_good_alignments_and_rejects_poor_ones_with_their_scores(spoken, tmp_path):
    handler = AlignerModelHandler(
        "tiny", {}, 4, cache_dir=str(tmp_path), torch_threads=1, guard=AlignGuardConfig().model_dump()
    )
    model = handler.load_model()
    good = handler.align_one(spoken(TEXT), model).clip
    assert good.reject is None and good.scores is not None
    assert good.scores.speech_in_spans >= 0.95 and good.scores.mostly_silent_share == 0.0
    # The text of only the first two words: the rest of the speech lies outside every span.
    poor = handler.align_one(spoken("Please turn"), model).clip
    assert poor.reject is not None and poor.reject.code == "align_poor" and poor.reject.stage == "align"
    assert poor.scores is not None and poor.scores.speech_in_spans < 0.9
    assert poor.reject.extra["speech_in_spans"] == poor.scores.speech_in_spans
    assert "speech_in_spans" in poor.reject.detail
    # Cache hits keep their scores and the bar is applied again (a changed bar re-aligns nothing).
    assert handler.align_one(spoken(TEXT), model).clip == good
    again = handler.align_one(spoken("Please turn"), model).clip
    assert again.reject == poor.reject and again.scores == poor.scores
    lenient = AlignerModelHandler("tiny", {}, 4, cache_dir=str(tmp_path), guard={"enabled": False})
    shipped = lenient.align_one(spoken("Please turn"), lenient.load_model()).clip
    assert shipped.reject is None and shipped.scores == poor.scores


def test_quality_distribution_in_a_pipeline():
    def keyed(i, scores, poor=False, lang="en"):
        rej = RejectError("align_poor", "x").to_reject(f"s{i}", "align") if poor else None
        clip = AlignedClip(session_id=f"s{i}", utterance_id=f"s{i}-u0", lang=lang, scores=scores, reject=rej)
        return (f"s{i}", Aligned(clip))

    rows = [
        keyed(0, AlignScores(1.0, 0.0, 0.9)),
        keyed(1, AlignScores(0.97, 0.0, 0.45), lang="zh"),
        keyed(2, AlignScores(0.4, 0.5, 0.05), poor=True),
        keyed(3, None),  # aligner disabled / TTS reject: not scored
    ]
    with TestPipeline() as p:
        out = p | beam.Create(rows) | beam.CombineGlobally(AlignQuality())

        def check(got):
            (q,) = got
            assert q["utterances"] == 3 and q["align_poor"] == 1
            s = q["speech_in_spans"]
            assert s["min"] == 0.4 and abs(s["mean"] - (1.0 + 0.97 + 0.4) / 3) < 1e-9
            assert dict(zip(s["bins"], s["counts"], strict=True)) == {
                "<0.5": 1, "[0.5,0.8)": 0, "[0.8,0.9)": 0, "[0.9,0.95)": 0, "[0.95,0.98)": 1,
                "[0.98,0.99)": 0, "[0.99,0.999)": 0, ">=0.999": 1,
            }  # fmt: skip
            assert sum(q["confidence"]["counts"]) == 3 and q["mostly_silent_share"]["counts"][0] == 2
            assert sorted(q["by_lang"]) == ["en", "zh"]
            assert (
                q["by_lang"]["zh"]["utterances"] == 1 and q["by_lang"]["zh"]["speech_in_spans"]["min"] == 0.97
            )
            assert q["by_lang"]["en"]["align_poor"] == 1

        assert_that(out, check)


def test_quality_distribution_of_nothing_is_empty():
    with TestPipeline() as p:
        out = p | beam.Create([]) | beam.CombineGlobally(AlignQuality())
        assert_that(out, equal_to([AlignQuality().extract_output(AlignQuality().create_accumulator())]))
