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
