"""The single routing point for exceptions (the only ``except Exception`` in the project).

Every stage calls its pure function through :func:`call_routed`:

* ``RejectError`` (a bad record) becomes a :class:`Reject` with the stage, the code and the detail;
* any other exception (a bug, or a backend that broke) follows the run's ``on_internal_error``
  policy. The default, ``"reject"``, turns it into a reject with code ``internal_error`` and the
  full traceback in ``detail``, logs it at ERROR level, counts it in the Beam counter
  ``internal_error/<stage>`` and in ``summary.json``; the CLI prints the count in red-flag form at
  the end and exits non-zero when it is not zero. We chose this over failing the job because one
  poisoned record in a million-seed Dataflow job should not throw away the other records' work,
  while a systematic bug still shows up at once (every record rejected, exit code 3).
  ``"fail"`` re-raises, for debugging.

Beam stages emit rejects as the tagged output :data:`REJECTS` (dead-letter pattern).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from apache_beam.metrics import Metrics

from duplexloom.schemas import Reject, RejectError

REJECTS = "rejects"
INTERNAL_ERROR = "internal_error"
MAX_DETAIL_CHARS = 8000

log = logging.getLogger("duplexloom.pipelines")
T = TypeVar("T")


def call_routed(
    stage: str,
    record_id: str,
    fn: Callable[..., T],
    *args: Any,
    policy: str = "reject",
    **kwargs: Any,
) -> tuple[T | None, Reject | None]:
    """``(fn(*args, **kwargs), None)`` or ``(None, reject)``. Never swallows silently."""
    try:
        return fn(*args, **kwargs), None
    except RejectError as e:
        Metrics.counter(stage, f"reject_{e.code}").inc()
        return None, e.to_reject(record_id, stage)
    except Exception as e:  # noqa: BLE001 - the one routing point, see module docstring
        if policy == "fail":
            raise
        Metrics.counter(INTERNAL_ERROR, stage).inc()
        tb = traceback.format_exc()
        log.error("INTERNAL ERROR in stage %s for record %s: %r\n%s", stage, record_id, e, tb)
        detail = f"{type(e).__name__}: {e}\n{tb}"
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[:MAX_DETAIL_CHARS] + "\n...[truncated]"
        return None, Reject(record_id=record_id, stage=stage, code=INTERNAL_ERROR, detail=detail)
