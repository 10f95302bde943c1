"""sketchrnn: sketch-rnn (Ha & Eck, "A Neural Representation of Sketch Drawings", 2017) in PyTorch.

Importing the package is cheap: torch and the model code load on first use of a name.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Config": "config", "ModelConfig": "config", "DataConfig": "config", "TrainConfig": "config",
    "apply_overrides": "config", "load_config": "config",
    "SketchRNNError": "errors", "DataError": "errors", "ConfigError": "errors",
    "ModelFileError": "errors", "TrainingError": "errors",
    "SketchRNN": "model",
    "load_npz": "data", "save_npz": "data", "SketchData": "data", "BatchLoader": "data",
    "Trainer": "train",
    "evaluate_model": "evaluate",
    "load_model": "checkpoint", "save_weights": "checkpoint", "shipped_models": "checkpoint",
    "LoadedModel": "loaded",
    "sample": "api", "encode": "api", "decode": "api", "reconstruct": "api",
    "load_magenta": "interop.magenta", "export_magenta": "interop.magenta",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'sketchrnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
