"""Plug-in registries: the built-in predictors and EnPACT model types, and those other packages add.

A registry maps names to "module:attribute" references, imported only when used (a CNN or a predictor pulls in
torch). Other installed packages add entries through a Python entry point group, e.g. in their pyproject.toml:

    [project.entry-points."enpact.models"]
    ridge = "my_package.ridge:RidgeModel"

    [project.entry-points."enpact.predictors"]
    my_model = "my_package.my_model:MyPredictor"

(see docs/extending.md). A built-in name cannot be replaced by a plug-in.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from enpact.errors import EnpactError


@dataclass(frozen=True)
class Registry:
    """Named plug-ins of one kind: built-ins plus an entry point group."""

    kind: str                       # what a name names, for messages ("model type", "predictor")
    group: str                      # the entry point group
    builtins: Mapping[str, str]     # name -> "module:attribute"

    def references(self) -> dict[str, str]:
        """Every registered name with its "module:attribute" reference (built-ins win over plug-ins)."""
        found = {ep.name: ep.value for ep in entry_points(group=self.group)}
        return {**found, **self.builtins}

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.references())

    def check(self, name: str) -> str:
        """`name` if registered, else a one-line EnpactError listing the names there are."""
        if name not in self.references():
            raise EnpactError(f"unknown {self.kind} '{name}'; available: {', '.join(self.names())} (plug-ins register "
                              f"more under the entry point group {self.group})")
        return name

    def load(self, name: str) -> Any:
        """The object a name refers to (imported now)."""
        reference = self.references()[self.check(name)]
        module_name, _, attribute = reference.partition(":")
        try:
            target = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as err:
            raise EnpactError(f"{self.kind} '{name}' ({reference}) cannot be loaded: {err}") from None
        return target


MODELS = Registry("model type", "enpact.models", {
    "elastic_net": "enpact.models.elastic_net:ElasticNetModel",
    "cnn": "enpact.models.cnn:CnnModel",
})
PREDICTORS = Registry("predictor", "enpact.predictors", {
    "enformer": "enpact.predictors.enformer:EnformerPredictor",
})
