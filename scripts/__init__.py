"""Scripts run against a deployed stack."""
