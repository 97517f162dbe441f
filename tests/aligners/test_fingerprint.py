"""Model fingerprints: what alignment caches and the run's config digest key on, so a retrained or
swapped model never serves stale alignments or lets resume skip shards."""

from __future__ import annotations

import json
import shutil

from duplexloom.aligners.base import SPAN_RULES, model_fingerprint
from duplexloom.aligners.tiny import MODEL_DIR, MODEL_NAME
from duplexloom.pipelines.config import config_digest, load_config


def test_tiny_fingerprint_is_the_committed_weights_hash_and_follows_model_dir(tmp_path):
    meta = json.loads((MODEL_DIR / f"{MODEL_NAME}.json").read_text(encoding="utf-8"))
    assert model_fingerprint("tiny") == f"tiny:{meta['weights_sha256']};spans={SPAN_RULES}"
    copy = tmp_path / "m"
    shutil.copytree(MODEL_DIR, copy)
    assert model_fingerprint("tiny", model_dir=str(copy)) == model_fingerprint("tiny")
    meta["weights_sha256"] = "0" * 64  # a retrained model
    (copy / f"{MODEL_NAME}.json").write_text(json.dumps(meta), encoding="utf-8")
    assert model_fingerprint("tiny", model_dir=str(copy)).startswith("tiny:" + "0" * 64 + ";")
    a = load_config(None, [])
    b = load_config(None, [f"aligner.options.model_dir={copy}"])
    c = load_config(None, [f"aligner.options.model_dir={copy}", "aligner.enabled=false"])
    assert config_digest(a) != config_digest(b) != config_digest(c)


def test_wav2vec2_local_fingerprint_changes_with_any_checkpoint_byte(tmp_path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "model.pt").write_bytes(b"\x00" * 1000)
    first = model_fingerprint("wav2vec2_local", model_dir=str(tmp_path))
    assert first == model_fingerprint("wav2vec2_local", model_dir=str(tmp_path))
    (tmp_path / "model.pt").write_bytes(b"\x00" * 999 + b"\x01")
    assert model_fingerprint("wav2vec2_local", model_dir=str(tmp_path)) != first
    assert first.startswith("wav2vec2_local:")
