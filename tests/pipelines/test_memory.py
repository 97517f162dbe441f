"""The allocator setting behind the flat-memory target (the effect itself is measured by
``make bench BENCH=pipeline``; here: it takes effect on glibc, once, and is harmless twice)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_pin_mmap_threshold_takes_effect_once_per_process():
    code = (
        "from duplexloom.pipelines import memory\n"
        "assert memory._done is None\n"
        "assert memory.pin_mmap_threshold() is True\n"
        "assert memory._done is True and memory.pin_mmap_threshold() is True\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
