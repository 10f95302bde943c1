"""sketch-rnn model (Ha & Eck 2017): recurrent cells, encoder, decoder, MDN head, SketchRNN.

Importing this subpackage imports torch; ``import sketchrnn`` alone does not.
"""

from __future__ import annotations

from ..config import ModelConfig
from .cells import CELL_CLASSES, HyperLSTMCell, LayerNormLSTMCell, LSTMCell, make_cell
from .decoder import Decoder
from .encoder import Encoder, reverse_within_length
from .mdn import (TEMPERATURE_MODES, MixtureParams, offset_log_prob, pen_log_prob, sample_step,
                  split_params)
from .sketch_rnn import SketchRNN

__all__ = [
    "SketchRNN",
    "ModelConfig",
    "LSTMCell",
    "LayerNormLSTMCell",
    "HyperLSTMCell",
    "make_cell",
    "CELL_CLASSES",
    "Encoder",
    "Decoder",
    "reverse_within_length",
    "MixtureParams",
    "split_params",
    "offset_log_prob",
    "pen_log_prob",
    "sample_step",
    "TEMPERATURE_MODES",
]
