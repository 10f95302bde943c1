"""How much TF32 products change a trained model's loss, by where they are used (CPU emulation).

On the GPU `train.matmul_precision: high` multiplies in TF32 (10-bit mantissa). For a model in
its late phase the question is whether that moves the objective by as much as training still
gains. This script takes a checkpoint, scores the first ``--n`` sketches of a split with the
plain model (float32, eval mode: no dropout) and again with the factors of chosen products
rounded to TF32 (round to nearest at mantissa bit 13, as the tensor cores read float32):

* ``head``: the mixture head (``Linear(H, 6M+3)``), which turns h into offsets' means and
  log-sigmas: a sharp mixture component makes its z-scores sensitive to the means' rounding;
* ``recurrence``: the LSTM cell's products (x @ W_ih, h @ W_hh) at every step;
* ``both``.

    git show 1655fa5:checkpoints/cat_uncond/last.pt > /tmp/cat_uncond.pt   # or any LSTM checkpoint
    python benchmarks/tf32_effect.py /tmp/cat_uncond.pt --data ../shared/data/distilled/cat.npz

Prints Magenta's L_R per setting and its change against float32. Plain decoder-only LSTM
models only (the cells the GPU path multiplies with cuBLAS).

Measured 2026-11-26 on the cat LSTM 512 at step 75,606 (first 500 valid sketches): head
+0.00006, recurrence -0.00034, both +0.00002 — the forward alone hardly moves. What TF32 does
to training is in its gradients: the same state trained on the CPU with only the head's three
products TF32-rounded (benchmarks/tf32_head_arm.py; figures in benchmarks/NOTES_gpu.md) stalled where the
float32 run went on improving, which is why the head is now always float32
(sketchrnn.model.decoder.Float32Head).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 -> the nearest value with TF32's 10 explicit mantissa bits (still float32)."""
    i = x.float().contiguous().view(torch.int32)
    return ((i + 0x1000) & ~0x1FFF).view(torch.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="valid")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sketchrnn.checkpoint import load_model
    from sketchrnn.data.npz import load_npz
    from sketchrnn.data.dataset import stroke5_batch
    from sketchrnn.model import cells

    import numpy as np

    ld = load_model(a.checkpoint)
    model, cfg = ld.model.eval(), ld.config
    if cfg.conditional or cfg.dec_model != "lstm":
        sys.exit("tf32_effect: decoder-only LSTM models only")
    sk = load_npz(a.data, a.split)[a.split][: a.n]
    lengths = np.array([len(s) for s in sk])
    x = torch.from_numpy(stroke5_batch(np.concatenate(sk), lengths, cfg.max_seq_len, ld.scale_factor))
    L = torch.from_numpy(lengths)

    lstm_forward = cells.LSTMCell.forward
    head = model.decoder.output

    res = {}
    for name in ("fp32", "head", "recurrence", "both"):
        cells.LSTMCell.forward = lstm_forward
        head.forward = lambda t, m=head: F.linear(t, m.weight, m.bias)
        saved = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            if name in ("head", "both"):
                head.forward = lambda t, m=head: F.linear(tf32(t), tf32(m.weight), m.bias)
            if name in ("recurrence", "both"):
                for cell in [model.decoder.cell]:
                    cell.weight_ih.copy_(tf32(cell.weight_ih))
                    cell.weight_hh.copy_(tf32(cell.weight_hh))
                cells.LSTMCell.forward = _tf32_lstm_forward(lstm_forward)
            out = model.losses(x, L)
            for n, p in model.named_parameters():
                p.copy_(saved[n])
        res[name] = float(out["L_R"])
        print(f"{name:>10}: L_R {res[name]:+.6f}  (vs fp32 {res[name] - res['fp32']:+.6f})", flush=True)
    cells.LSTMCell.forward = lstm_forward


def _tf32_lstm_forward(orig):
    """The cell's forward with its input and h rounded to TF32 before the products (the
    weights are rounded by the caller); c and the gate math stay float32."""
    def fwd(self, x, state):
        H = self.hidden_size
        c, h = state[..., :H], state[..., H:]
        return orig(self, tf32(x), torch.cat([c, tf32(h)], dim=-1))
    return fwd


if __name__ == "__main__":
    main()
