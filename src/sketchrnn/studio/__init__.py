"""Sketch studio: a local web page to draw with sketch-rnn models (``sketchrnn studio``).

As you draw, the model proposes completions (ghost strokes); conditional models also
reconstruct and interpolate drawings; any model samples from its prior. The page is plain
HTML/CSS/JS in ``static/`` (no network, no build step); the JSON API is described at
``/openapi.json``. Importing this package is cheap: the web framework (starlette,
uvicorn; ``pip install 'sketchrnn[studio]'``) loads only when an app is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "app",
    "ModelRegistry": "registry",
    "ModelEntry": "registry",
    "StudioService": "service",
    "Limits": "validation",
    "RequestError": "validation",
    "BackgroundServer": "server",
    "serve": "server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'sketchrnn.studio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
