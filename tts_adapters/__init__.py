"""duplexloom.tts_adapters."""
