"""Every recipe in configs/ is a valid strict config whose data paths exist beside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from sketchrnn.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_points_at_shared_data(path, shared_dir, repo_dir):
    cfg = load_config(path)
    assert cfg.data.paths, "a recipe names its data"
    for p in cfg.data.paths:
        assert (repo_dir / p).resolve().is_file(), f"{path.name}: {p} not found relative to the repo root"


INIT_CONFIGS = [p for p in CONFIGS if load_config(p).train.init_from]


@pytest.mark.parametrize("path", INIT_CONFIGS, ids=lambda p: p.name)
def test_init_from_resolves_to_weights_of_the_recipes_shape(path, repo_dir, monkeypatch):
    """A fine-tuning recipe names a model (shipped name, or a file relative to the repo root) whose
    weight-shaping settings are the recipe's own: replacing a shipped model by another
    architecture must not silently break the recipes that start from it."""
    from sketchrnn.train import _load_init

    cfg = load_config(path)
    monkeypatch.chdir(repo_dir)
    init = _load_init(cfg.train.init_from, cfg.model)  # raises ConfigError on a shape mismatch
    assert init.config.dec_rnn_size == cfg.model.dec_rnn_size
