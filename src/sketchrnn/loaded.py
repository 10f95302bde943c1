"""The result of loading a model from any source (checkpoint, safetensors, Magenta JSON).

Kept in its own torch-free module so that ``checkpoint.py``, ``interop/magenta.py`` and
``api.py`` can all return the same type without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import ModelConfig

__all__ = ["LoadedModel"]


@dataclass
class LoadedModel:
    """A ready-to-use model and what is needed to feed it data.

    ``model`` is a :class:`sketchrnn.model.SketchRNN` in eval mode; ``scale_factor`` is the
    std of the training offsets (model input = offsets / scale_factor); ``class_names``
    lists the classes the model was trained on (one per source file, may be empty);
    ``name`` is a short display name; ``source`` where it came from (path or shipped
    name); ``info`` free-form metadata of the source (Magenta header, step, losses...).
    """

    model: Any
    config: ModelConfig
    scale_factor: float
    class_names: list[str]
    name: str
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def cfg(self) -> ModelConfig:
        """Alias of :attr:`config` (ARCHITECTURE.md writes ``LoadedModel(model, cfg, ...)``)."""
        return self.config
