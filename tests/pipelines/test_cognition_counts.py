"""Per sample whether cognition and chains reached the data, and the summary's counts per family."""

from duplexloom.pipelines.outputs import cognition_counts
from duplexloom.pipelines.serialize import cognition_status
from duplexloom.schemas import ActionObject, Timeline
from duplexloom.schemas.annotation import (
    AnnotatedTurn,
    Annotation,
    CognitionEntry,
    CognitionStream,
    ThinkingNode,
)
from tests.pipelines.manifest_rows import manifest_row

TURNS = (AnnotatedTurn(role="user", text="What time is it?"), AnnotatedTurn(role="assistant", text="Nine."))
STREAM = CognitionStream(
    turn_index=0,
    entries=(CognitionEntry(second=0, text="a question"),),
    heard_units=(4,),
    voice_response="Nine.",
    reply_text="It is nine.",
)
NODE = ThinkingNode(type="INTENT", text="question", turn_index=0)


def _ann(family, **kw):
    return Annotation(seed_id="s", lang="en", family=family, turns=TURNS, **kw)


def test_status_says_carried_or_why_not():
    think = Timeline(
        session_id="s",
        duration_samples=16_000,
        family="think",
        actions=(
            ActionObject(
                id="t", name="think", text="a question", offset_samples=16_000, provenance="cognition:x"
            ),
        ),
    )
    full = _ann("think", cognition=(STREAM,), chains=(NODE,))
    assert cognition_status(full, think, ("ta4", "ct"), ("think",)) == {
        "cognition": "carried",
        "chains": "carried",
    }
    # Chains ride neither TA4 (no chain think action here) nor ct: not carried.
    assert cognition_status(full, think, ("ta4",), ("think",))["chains"] == "omitted:turn_not_on_timeline"
    bare = think.model_copy(update={"actions": ()})
    assert cognition_status(full, bare, ("ta4",), ("think",))["cognition"] == "omitted:turn_not_on_timeline"
    dialogue = Timeline(session_id="s", duration_samples=16_000, family="dialogue")
    assert cognition_status(_ann("dialogue", cognition=(STREAM,)), dialogue, ("ta4",), ("think",)) == {
        "cognition": "omitted:family_not_in_think_families",
        "chains": "omitted:not_annotated",
    }
    assert cognition_status(_ann("dialogue"), dialogue, ("ta4",), ("think",))["cognition"] == (
        "omitted:family_not_in_think_families"
    )
    said = _ann("think", provenance={"cognition": "omitted:no_reply", "chains": "omitted:offline_no_nodes"})
    assert cognition_status(said, bare, ("ta4",), ("think",)) == {
        "cognition": "omitted:no_reply",
        "chains": "omitted:offline_no_nodes",
    }


def test_summary_counts_per_family():
    rows = [
        manifest_row("a", family="think", cognition="carried", chains="carried"),
        manifest_row("b", family="think", cognition="omitted:no_reply", chains="carried"),
        manifest_row(
            "c", family="dialogue", cognition="omitted:family_not_in_think_families", chains="carried"
        ),
    ]
    assert cognition_counts(rows) == {
        "dialogue": {"cognition": {"omitted:family_not_in_think_families": 1}, "chains": {"carried": 1}},
        "think": {"cognition": {"carried": 1, "omitted:no_reply": 1}, "chains": {"carried": 2}},
    }
