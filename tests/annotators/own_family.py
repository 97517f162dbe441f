"""The annotator tests' shorthand: ``annotate_batch`` over seeds that name their own family.

The annotate stage decides each seed's family and hands it to ``annotate_batch``; these tests give
each seed the family it names, ``dialogue`` when it names none.
"""

from __future__ import annotations

from duplexloom.annotators import annotate_batch


def annotate_own(seeds, config, *, run_seed: int):
    return annotate_batch(seeds, config, run_seed=run_seed, families=[s.family or "dialogue" for s in seeds])
