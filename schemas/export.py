"""Write JSON Schema files for the public records into ``schemas/json/`` (``make schemas``).

``tests/test_schemas.py`` fails when a committed file differs from what this module generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .action import ActionObject, ToolSpec
from .annotation import Annotation
from .chunk import ChunkRecord
from .manifest import ManifestRow
from .reject import Reject
from .sample import SampleMeta
from .seed import Seed
from .speaker import Speaker
from .timeline import Timeline
from .utterance import Utterance

EXPORTED = {
    "seed": Seed,
    "speaker": Speaker,
    "utterance": Utterance,
    "action": ActionObject,
    "tool_spec": ToolSpec,
    "timeline": Timeline,
    "chunk": ChunkRecord,
    "sample": SampleMeta,
    "reject": Reject,
    "annotation": Annotation,
    "manifest_row": ManifestRow,
}

JSON_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, str]:
    """File name -> file text for every exported record."""
    return {
        f"{name}.schema.json": json.dumps(
            model.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for name, model in EXPORTED.items()
    }


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for fname, text in render_all().items():
        (JSON_DIR / fname).write_text(text, encoding="utf-8")
        print(f"wrote {JSON_DIR / fname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
