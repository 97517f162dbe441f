"""duplexloom.pipelines."""
