"""EnPACT models: from per-locus sequence features to the observed feature level.

Use `create_model(type, feature_spec, **hyperparameters)` for a new model and `load_model(directory)` for a
saved one; `MODEL_TYPES` lists the built-in types (`elastic_net`, `cnn`).
"""

from enpact.models.base import (
    MODEL_TYPES,
    EnpactModel,
    FeatureSpec,
    as_feature_array,
    available_model_types,
    create_model,
    load_model,
    model_class,
    read_model_json,
)

__all__ = [
    "MODEL_TYPES",
    "EnpactModel",
    "FeatureSpec",
    "as_feature_array",
    "available_model_types",
    "create_model",
    "load_model",
    "model_class",
    "read_model_json",
]
