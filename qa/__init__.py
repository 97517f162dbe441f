"""duplexloom.qa."""
