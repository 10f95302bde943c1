from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKETCHRNN_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (read-only data); skips the test when absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set SKETCHRNN_SHARED or place ../shared beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture
def persistent():
    """The persistent Triton kernels on, run by Triton's interpreter on CPU tensors, 16-wide step
    tiles; restores the tiles and the switch afterwards (tests/test_triton_lstm.py,
    tests/test_triton_hyper.py). Skips where Triton's interpreter cannot run them."""
    triton = pytest.importorskip("triton", reason="the Triton kernels need the triton package")
    if tuple(int(v) for v in triton.__version__.split(".")[:2]) < (3, 8):
        pytest.skip(f"Triton {triton.__version__}'s interpreter cannot run the persistent kernels (needs 3.8)")
    from sketchrnn.fast import triton_lstm as tlm

    saved = tlm.blocks()
    tlm.set_blocks(fw=(16, 16, 16), bw=(16, 16, 16))
    tlm.set_interpret(None)
    tlm.set_persistent(True)
    yield
    tlm.set_persistent(False)
    tlm.set_blocks(**saved)

