"""Worker-process tuning (``pipelines/transport.py``): the allocator setting behind the
flat-memory target and single-threaded torch (the effects themselves are measured by
``make bench BENCH=pipeline``; here: they take effect, once, and are harmless twice)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_pin_mmap_threshold_takes_effect_once_per_process():
    code = (
        "from duplexloom.pipelines import transport\n"
        "assert transport._pinned is None\n"
        "transport.prepare_worker()\n"
        "assert transport._pinned is True and transport.pin_mmap_threshold() is True\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_workers_run_torch_single_threaded_by_default():
    from duplexloom.pipelines.config import ConfigError, load_config

    assert load_config(None, []).torch_threads == 1
    assert load_config(None, ["torch_threads=null"]).torch_threads is None
    with pytest.raises(ConfigError, match="torch_threads"):
        load_config(None, ["torch_threads=0"])
    code = (
        "import torch\n"
        "from duplexloom.pipelines.align import AlignerModelHandler\n"
        "torch.set_num_threads(2)\n"
        "AlignerModelHandler('tiny', {}, 4, torch_threads=1).load_model()\n"
        "assert torch.get_num_threads() == 1, torch.get_num_threads()\n"
        "from duplexloom.pipelines.stage_runtime import set_torch_threads\n"
        "set_torch_threads(None)\n"
        "assert torch.get_num_threads() == 1\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_a_sealed_record_crosses_pickling_as_its_bytes():
    import pickle

    from duplexloom.pipelines.transport import pack_spans, seal, unpack_spans
    from duplexloom.schemas import TimedSpan

    spans = (TimedSpan(text="早", start_samples=0, end_samples=480, confidence=0.5),)
    sealed = seal({"words": pack_spans(spans)})
    copied = pickle.loads(pickle.dumps(sealed, pickle.HIGHEST_PROTOCOL))
    assert copied == sealed and copied.blob == sealed.blob  # the runner moves the same bytes
    assert len(pickle.dumps(sealed, pickle.HIGHEST_PROTOCOL)) < len(sealed.blob) + 64
    assert unpack_spans(copied.open()["words"]) == spans
