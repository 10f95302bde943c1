#!/usr/bin/env bash
# All GPU work of one session (15 device-minutes in all, start-up included), in two calls.
#
#   bash benchmarks/gpu_session.sh checks
#       ~8 min: GPU tests, training-step benchmark (every variant, numerics), batched sampling
#       on GPU and CPU, the single-GPU torchrun == plain check. Results: $OUT/*.txt|json.
#   MODEL=cat_vae_layer_norm DATA=gpu_data/cat.npz MINUTES=4 bash benchmarks/gpu_session.sh train
#       a resumable training chunk of configs/$MODEL.json: starts from checkpoints/$MODEL/last.pt
#       when it exists, stops after $MINUTES, writes $OUT/last.pt (compact resume checkpoint,
#       <= 16 MB: commit it as checkpoints/$MODEL/last.pt), $OUT/metrics.csv, $OUT/best.safetensors.
#
# Data: ../shared does not travel to the GPU machine. Copy what the chunk needs into a folder
# the repo ignores and carry it, e.g. (here, before the call)
#   mkdir -p gpu_data && cp ../shared/data/distilled/cat.npz gpu_data/ && echo gpu_data >> .git/info/exclude
# and call run(..., carry=["gpu_data"]) (the working tree travels with a 64 MiB limit).
# Predictions and outcomes go in benchmarks/NOTES_gpu.md.
set -uo pipefail
OUT=${OUT:-/tmp/sketchrnn-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
python3 -c "import sketchrnn" 2>/dev/null || $PY -m pip install -q -e . --no-deps

step() {  # step SECONDS NAME CMD...: run with a time limit, keep the output's tail in $OUT/NAME.txt
  local limit=$1 name=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "[$name] rc=$rc in $((SECONDS - t0)) s (limit $limit s)" | tee -a "$OUT/session.txt"
  tail -c 200000 "$OUT/$name.txt" > "$OUT/$name.tmp" && mv "$OUT/$name.tmp" "$OUT/$name.txt"
}

case "${1:-}" in
  checks)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/session.txt" 2>&1
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >> "$OUT/session.txt"
    step 170 gpu_tests $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_fast_decoder.py
    step 230 bench_train $PY benchmarks/bench_train.py --budget-s 200 --json-out "$OUT/bench_train.json"
    step 70 bench_sample $PY benchmarks/bench_sample.py --batch 1000 --repeats 1 --json-out "$OUT/bench_sample.json"
    step 80 torchrun_check bash benchmarks/gpu_torchrun_check.sh
    ;;
  train)
    MODEL=${MODEL:?set MODEL, e.g. cat_vae_layer_norm (configs/MODEL.json)}
    MINUTES=${MINUTES:-4}
    RUN=runs/$MODEL
    mkdir -p "$RUN"
    ARGS=(--config "configs/$MODEL.json" --out "$RUN" --device "${DEVICE:-cuda}" --max-minutes "$MINUTES" --no-progress)
    [ -n "${DATA:-}" ] && ARGS+=(--data $DATA)
    if [ -f "checkpoints/$MODEL/last.pt" ] && [ ! -f "$RUN/last.pt" ]; then
      cp "checkpoints/$MODEL/last.pt" "$RUN/last.pt"
    fi
    [ -f "$RUN/last.pt" ] && ARGS+=(--resume)
    step "$(python3 -c "print(int(float('$MINUTES') * 60) + 120)")" train $PY -m sketchrnn train "${ARGS[@]}"
    step 60 compact $PY -m sketchrnn compact-checkpoint "$RUN/last.pt" --out "$OUT/last.pt" --max-mb 16
    cp "$RUN/metrics.csv" "$OUT/metrics.csv" 2>/dev/null
    [ -f "$RUN/best.pt" ] && step 60 export $PY -m sketchrnn export "$RUN/best.pt" --out "$OUT/best.safetensors"
    ;;
  *)
    sed -n '2,20p' "$0"
    exit 2
    ;;
esac
