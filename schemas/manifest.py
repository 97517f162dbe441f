"""The manifest row: one finished sample's line in ``manifest.parquet`` (SPEC section 13).

Made by the serialize stage (``pipelines/serialize.py``) for each sample it ships, carried with the
sample to the shard writer (and in the shard's resume state, ``state/%06d.json``), written by
``pipelines/outputs.py``. The fields are the columns, in the file's order; the Parquet schema is
derived from their types (``str`` -> string, ``int`` -> int64, ``float`` -> float64, ``| None`` ->
null allowed). Every field is required: a row without a column is an error, not a silent null.
"""

from __future__ import annotations

from .base import Record


class ManifestRow(Record):
    key: str  # the sample's key in its shard (``__key__``)
    shard: str  # "shards/%06d.tar"
    seed_id: str
    family: str
    family_substitution: str | None  # "drawn->served" when the annotator could not serve the draw
    lang: str
    duration_s: float  # the audio's length: both tracks are padded to every chunk, drain included
    user_speech_s: float
    assistant_speech_s: float
    n_chunks: int
    n_utterances: int
    n_actions: int
    n_tool_calls: int
    max_action_tokens: int
    user_speaker: str
    assistant_speaker: str
    tokenizer: str
    layouts: str  # comma-separated
    action_channel: str  # comma-separated
    prompt_hashes: str  # JSON object, template name -> sha256
    bytes: int  # the sample's tar members together
    cognition: str  # "carried" or "omitted:<reason>"
    chains: str
