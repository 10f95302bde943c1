#!/usr/bin/env bash
# Single-GPU run under torchrun == plain run (docs/SCALING.md, "GPU check").
#
#   bash benchmarks/gpu_torchrun_check.sh [DATA.npz]        # on a CUDA machine
#   DEVICE=cpu bash benchmarks/gpu_torchrun_check.sh         # the same check on CPU (gloo)
#
# 1. `sketchrnn train` plain, and `torchrun --nproc-per-node 1 -m sketchrnn train` with the
#    same config, deterministic algorithms on: the two last.pt must hold identical weights
#    (world size 1 under torchrun is the plain computation inside DDP). Once per value of
#    train.fast in $FAST_MODES (default "true false"): DDP wraps the same losses the plain run
#    uses (the fused fast path, or the plain reference model).
# 2. If 2+ GPUs are visible (or DEVICE=cpu): `torchrun --nproc-per-node 2` on a deterministic
#    model (decoder-only, no dropout, no augmentation) must match the plain run on the same
#    global batch within float tolerance.
# Prints one line per check and exits non-zero if one fails. Default data: synthetic shapes
# (or pass ../shared/data/sketchrnn/aaron_sheep.npz).
set -euo pipefail
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-20}
PY=${PYTHON:-python3}
WORK=$(mktemp -d -t sketchrnn-gpucheck-XXXX)
trap 'rm -rf "$WORK"' EXIT
export CUBLAS_WORKSPACE_CONFIG=:4096:8 OMP_NUM_THREADS=1
DATA=${1:-$WORK/shapes.npz}
if [ ! -f "$DATA" ]; then
  $PY -c "from sketchrnn.data.synthetic import write_synthetic_npz as w; w('$DATA', 2000, 200, 200, seed=0)"
fi
COMMON=(--data "$DATA" --device "$DEVICE" --steps "$STEPS" --no-progress --set
        model.enc_rnn_size=128 model.dec_rnn_size=256 model.z_size=32 model.num_mixture=10
        train.batch_size=64 train.eval_every=20 train.save_every=20 train.max_eval_sketches=128
        train.deterministic=true train.num_threads=1)
EXACT=(model.conditional=false model.use_recurrent_dropout=false data.random_scale_factor=0
       data.augment_stroke_prob=0)

compare() {  # compare A B TOL LABEL
  $PY - "$1" "$2" "$3" "$4" <<'EOF'
import sys, torch
a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
tol, label = float(sys.argv[3]), sys.argv[4]
assert a["step"] == b["step"], (a["step"], b["step"])
d = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"])
ok = d <= tol
print(f"{'PASS' if ok else 'FAIL'} {label}: step {a['step']}, max |weight difference| = {d:.3g} (tolerance {tol:g})")
sys.exit(0 if ok else 1)
EOF
}

for FAST in ${FAST_MODES:-true false}; do
  $PY -m sketchrnn train "${COMMON[@]}" train.fast=$FAST --out "$WORK/plain_$FAST" > /dev/null
  $PY -m torch.distributed.run --nproc-per-node 1 --master-port 29541 -m sketchrnn train "${COMMON[@]}" \
      train.fast=$FAST --out "$WORK/torchrun1_$FAST" > /dev/null
  compare "$WORK/plain_$FAST/last.pt" "$WORK/torchrun1_$FAST/last.pt" 0 \
      "torchrun --nproc-per-node 1 == plain ($DEVICE, train.fast=$FAST)" || FAILED=1
done

NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$DEVICE" = cpu ] || [ "$NGPU" -ge 2 ]; then
  $PY -m sketchrnn train "${COMMON[@]}" "${EXACT[@]}" --out "$WORK/plain_exact" > /dev/null
  $PY -m torch.distributed.run --nproc-per-node 2 --master-port 29542 -m sketchrnn train "${COMMON[@]}" \
      "${EXACT[@]}" --out "$WORK/torchrun2" > /dev/null
  compare "$WORK/plain_exact/last.pt" "$WORK/torchrun2/last.pt" 1e-4 "torchrun --nproc-per-node 2 ~= plain ($DEVICE)" || FAILED=1
fi
exit "${FAILED:-0}"
