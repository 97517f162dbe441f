"""``make bench``: runs every ``tests/bench/bench_*.py`` module's ``main()`` in turn.

Each benchmark prints its own measurements as ratios taken side by side in one run; targets are
printed next to the numbers, never asserted in unit tests.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import tests.bench as pkg


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("bench_"))
    for name in names:
        if wanted and name.removeprefix("bench_") not in wanted and name not in wanted:
            continue
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"tests.bench.{name}").main()
        print(f"--- {name} took {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
