"""Experiment: `sketchrnn train` on the CPU, but with the decoder's mixture head multiplied as
TF32 would on a GPU in training: both factors of its forward and of its two backward products
rounded to TF32's 10-bit mantissa (round to nearest). Validation (eval mode) stays float32, as
on the GPU. Same arguments as `sketchrnn train`, e.g. (the 2026-11-26 run, benchmarks/NOTES_gpu.md):

    python benchmarks/tf32_head_arm.py train --config configs/cat_uncond.json --out runs/ab_T --resume \
        --set train.batch_size=1000 train.ema_decay=0.99 train.num_threads=1 train.eval_every=50

(run dir prepared with the checkpoint to resume: runs/ab_T/last.pt)."""
import sys
import torch
import torch.nn.functional as F


def tf32(x):
    i = x.contiguous().view(torch.int32)
    i = (i + 0x1000) & ~0x1FFF  # round to nearest at bit 13: 10 explicit mantissa bits remain
    return i.view(torch.float32)


class _TF32Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return tf32(x) @ tf32(w).t() + b

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = tf32(g) @ tf32(w)
        gw = tf32(g2).t() @ tf32(x.reshape(-1, x.shape[-1]))
        return gx, gw, g2.sum(0)


from sketchrnn.model.decoder import Float32Head  # noqa: E402

_orig = Float32Head.forward


def forward(self, x):
    if self.training:
        return _TF32Linear.apply(x, self.weight, self.bias)
    return _orig(self, x)


Float32Head.forward = forward  # the mixture head (nn.Linear before 2026-11-26)
from sketchrnn.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
