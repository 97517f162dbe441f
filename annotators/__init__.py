"""duplexloom.annotators: LLM and offline annotation of seeds (SPEC sections 4, 8-11).

Entry point: :func:`annotate_batch` (seeds -> ``Annotation | Reject`` per seed, same order).
Backends: :class:`~.offline.OfflineAnnotator` (default, deterministic, no network) and
:class:`~.llm.LLMAnnotator` (OpenAI-compatible endpoint), configured by :class:`AnnotatorConfig`.
"""

from .batch import annotate_batch, annotate_batch_async, make_annotator
from .config import AnnotatorConfig, LLMConfig
from .offline import omitted_fields

__all__ = [
    "AnnotatorConfig",
    "LLMConfig",
    "annotate_batch",
    "annotate_batch_async",
    "make_annotator",
    "omitted_fields",
]
