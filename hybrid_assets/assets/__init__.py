"""Asset definitions, one module per stage."""
