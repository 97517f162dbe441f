"""Tools above the packages: commands that drive several of them (``aligner_model``: the TTS
backend makes the aligner's training corpus). Nothing imports them (tests/test_layering.py)."""
