"""The old home of the resampler, now :mod:`duplexloom.audio`; re-exported."""

from duplexloom.audio import resample, rescale_samples  # noqa: F401  (re-exports)
