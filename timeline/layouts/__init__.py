"""Other layouts rendered from the same timeline (SPEC section 16): Listen-Write-Speak units
(:mod:`.lws`) and the chronological-thinking text channel (:mod:`.ct`)."""

from .ct import render_ct
from .lws import render_lws

__all__ = ["render_ct", "render_lws"]
