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
