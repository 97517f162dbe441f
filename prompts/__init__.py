"""duplexloom.prompts."""
