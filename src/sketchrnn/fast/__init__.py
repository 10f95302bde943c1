"""Fast paths of sketch-rnn; the plain model (:mod:`sketchrnn.model`) stays the correctness oracle.

* :mod:`.sampler` — lean CPU sampler used by ``sketchrnn.api.decode(..., fast=True)``;
* :mod:`.decoder` — teacher-forced training forward (encoder + decoder + losses) with the
  input projections and the MDN head hoisted out of the recurrence, and on CUDA a
  compiled / CUDA-graph-captured recurrent loop (automatic, with a clean fallback,
  :mod:`.cuda`); ``fast_losses(model, strokes, lengths, ...)`` is a drop-in for
  ``model.losses``;
* :mod:`.oracle` — runs the plain model with given dropout masks / noise (tests, benchmarks).

Importing this subpackage imports torch.
"""

from __future__ import annotations

from .sampler import FastSampler, draw_random, get_sampler, supports

__all__ = ["FastSampler", "draw_random", "get_sampler", "supports"]
