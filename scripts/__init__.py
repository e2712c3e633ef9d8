"""Developer scripts: code generation (protos.py) and the pipeline gates (gates.py)."""
