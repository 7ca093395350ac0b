"""EnPACT: adapt DNA-sequence models to molecular data and linearize them into PredictDB models."""

__version__ = "0.1.0"
