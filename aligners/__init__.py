"""duplexloom.aligners."""
