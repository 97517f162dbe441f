from duplexloom.schemas import Seed
from duplexloom.schemas.export import JSON_DIR, render_all


def test_json_schema_files_are_current():
    stale = []
    for fname, text in render_all().items():
        path = JSON_DIR / fname
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(fname)
    assert not stale, f"JSON Schema files are stale, run `make schemas`: {stale}"


def test_seed_rejects_marker_strings():
    import pytest

    with pytest.raises(ValueError, match="reserved marker"):
        Seed.model_validate(
            {"id": "s", "lang": "en", "turns": [{"role": "user", "text": "hi <|action_end|>"}]}
        )
    with pytest.raises(ValueError, match="reserved marker"):
        Seed.model_validate({"id": "s", "lang": "en", "turns": [{"role": "user", "text": "ok <interrupt>"}]})


def _clip_utterance():
    from duplexloom.schemas import ClipUtterance, TimedSpan

    words = (
        TimedSpan(text="turn", start_samples=800, end_samples=4000, confidence=0.9),
        TimedSpan(text="left", start_samples=4000, end_samples=7000),
    )
    return ClipUtterance(
        id="a1", speaker="assistant", speaker_id="asst_00", lang="en", text="turn left", kind="turn",
        turn_index=1, words=words, chars=words[:1], n_samples=9000, align_confidence=0.7,
    )  # fmt: skip


def test_a_clip_utterance_placed_at_an_offset_is_a_session_utterance_on_the_session_clock():
    from duplexloom.schemas import Utterance

    clip = _clip_utterance()
    placed = clip.placed_at(16_000)
    assert type(placed) is Utterance
    assert [(w.text, w.start_samples, w.end_samples, w.confidence) for w in placed.words] == [
        ("turn", 16_800, 20_000, 0.9),
        ("left", 20_000, 23_000, None),
    ]
    assert placed.chars == placed.words[:1]
    assert (placed.audio_start_samples, placed.audio_end_samples, placed.cut_samples) == (
        16_000,
        25_000,
        None,
    )
    same = ("id", "speaker", "speaker_id", "lang", "text", "kind", "turn_index", "align_confidence")
    assert {k: getattr(placed, k) for k in same} == {k: getattr(clip, k) for k in same}
    assert clip.placed_at(0).words == clip.words  # the clip clock is the session clock at offset 0


def test_a_timeline_refuses_an_utterance_on_the_clip_clock():
    import pytest
    from pydantic import ValidationError

    from duplexloom.schemas import Timeline

    clip = _clip_utterance()
    with pytest.raises(ValidationError, match="instance of Utterance"):
        Timeline(session_id="s", duration_samples=32_000, utterances=(clip,))
    assert Timeline(session_id="s", duration_samples=32_000, utterances=(clip.placed_at(0),)).utterances


def test_session_utterance_fields_keep_their_serialized_order():
    """The sample JSON of every shard holds the timeline's utterances in this field order."""
    from duplexloom.schemas import Utterance

    assert list(Utterance.model_fields) == [
        "id", "speaker", "speaker_id", "lang", "text", "kind", "turn_index", "words", "chars",
        "audio_start_samples", "audio_end_samples", "cut_samples", "align_confidence",
    ]  # fmt: skip
