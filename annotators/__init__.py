"""duplexloom.annotators: LLM and offline annotation of seeds (SPEC sections 4, 8-11)."""
