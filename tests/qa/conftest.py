"""Fixtures: one real dataset (espeak speech, core serializer, real tars) shared by the QA tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.qa.fixtures import write_dataset


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<dir>/shards/000000.tar`` (toolcall + interrupt samples), ``000001.tar`` (dialogue),
    ``summary.json`` and ``rejects.jsonl`` beside them, as the Beam job lays them out."""
    out = tmp_path_factory.mktemp("qa_dataset")
    write_dataset(out)
    return out
