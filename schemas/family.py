"""The task families (SPEC section 11): their names, once, as a type.

``Family`` types every record field that holds a decided family (``Annotation.family``): the
annotate stage decides a seed's family once (``duplexloom.timeline.families.choose_family``, the
``unknown_family`` reject), and every later stage reads it from the annotation.
"""

from __future__ import annotations

from typing import Literal, get_args

Family = Literal[
    "dialogue",
    "asr_human",
    "asr_assistant",
    "interpret",
    "toolcall",
    "interrupt",
    "backchannel",
    "pause",
    "think",
]
FAMILIES: tuple[Family, ...] = get_args(Family)
