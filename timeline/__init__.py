"""duplexloom.timeline."""
