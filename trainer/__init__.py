"""duplexloom.trainer."""
