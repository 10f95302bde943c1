"""The README's examples: every `sketchrnn ...` command parses, the Python example runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def readme_commands() -> list[str]:
    cmds = []
    for block in code_blocks("bash"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("sketchrnn "):
                    cmds.append(part)
    return cmds


def test_readme_starts_with_exactly_two_commands():
    text = README.read_text()
    first = code_blocks("bash")[0].strip().splitlines()
    assert len(first) == 2 and text.index("```bash") < text.index("\n## ")
    assert "pytest" in first[1] and "sketchrnn" in first[0]
    # .ci/run runs the same install + test command
    ci = (README.parent / ".ci" / "run").read_text()
    install, test = (p.strip() for p in first[1].split("&&"))
    assert install.replace("pip install", "python3 -m pip install -q") in ci
    assert test.replace("python -m pytest -q", "python3 -m pytest -q") in ci


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command_parses(cmd):
    from sketchrnn.cli import _load_extensions, build_parser

    _load_extensions()
    argv = shlex.split(cmd)[1:]
    build_parser().parse_args(argv)  # SystemExit (argparse error) fails the test


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """Runs the README's Python block against a tiny model trained here in place of runs/sheep."""
    from sketchrnn.config import Config, apply_overrides
    from sketchrnn.data.synthetic import write_synthetic_npz
    from sketchrnn.train import Trainer

    # stand-in for ../shared/data/sketchrnn/aaron_sheep.npz, relative to the working folder
    data = tmp_path / "shared" / "data" / "sketchrnn" / "aaron_sheep.npz"
    write_synthetic_npz(data, 32, 8, 8, seed=0)
    work = tmp_path / "work"
    work.mkdir()
    cfg = apply_overrides(Config(), [f"data.paths={data}", "model.enc_rnn_size=16", "model.dec_rnn_size=24",
                                     "model.z_size=8", "model.num_mixture=3", "model.max_seq_len=64",
                                     "train.batch_size=8", "train.num_steps=2", "train.eval_every=2"])
    Trainer(cfg, work / "runs" / "sheep", progress=False).fit()
    monkeypatch.chdir(work)
    blocks = code_blocks("python")
    assert blocks, "README has no Python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    assert len(ns["sketches"]) == 4 and ns["z"].shape == (4, 8)
    assert len(ns["again"]) == 4 and all(len(r) == 2 for r in ns["again"])
