#!/usr/bin/env bash
# All GPU work of one session (15 device-minutes in all, start-up included).
#
# The machine goes back 30 s after a call returns: a session makes one call, or two issued back to
# back (checks, then `train` on the still-warm machine: no second start-up):
#   MODEL=cat_vae_layer_norm DATA=gpu_data/cat.npz bash benchmarks/gpu_session.sh all
#       what the first H100 session (2026-11-26) left open, most wanted first: GPU tests,
#       torchrun == plain with the fast path under DDP, GPU numerics of the fast paths vs the
#       reference, the launch-bound layout A/B (LayerNorm, Hyper), GPU batched sampling, a
#       kernel profile of the fast LSTM step (~6-8 min), then a training chunk of
#       configs/$MODEL.json for whatever is left of
#       SESSION_S (default 575 s) — give run() timeout_s = SESSION_S + 25.
#   bash benchmarks/gpu_session.sh persistent
#       ~4-9 min: the persistent Triton kernels' graph-captured gpu tests (PTESTS: a pytest -k
#       expression; "persistent or hyper" for all of them), the recurrences in float32, TF32 x3 and
#       TF32, the training step, then B 1000; writes runs/triton_env
#       (persistent kernels on or off) for a `train` call that follows on the warm machine.
#   SESSION_S=330 bash benchmarks/gpu_session.sh triton
#       the fused Triton LSTM steps (first measured on an H200, 2026-11-26), most wanted first:
#       their gpu tests (compiled kernels == float64 reference, graph-captured training forward
#       == eager), the recurrence benchmark over tile sizes at the cat chunk's shape (B 1000,
#       T 130), the choice of tiles for training (written to runs/triton_env, which a following
#       `train` call on the warm machine reads), the LSTM training step fast vs fast+triton,
#       a profile at B 1000, the B-100 tile benchmark; with MODEL set, a training chunk for
#       whatever is left of SESSION_S (default 575 s). TRITON_TRAIN=0 keeps the kernels off.
#   bash benchmarks/gpu_session.sh checks
#       ~8 min: GPU tests, training-step benchmark (every variant, numerics), batched sampling
#       on GPU and CPU, the single-GPU torchrun == plain check.
#   MODEL=cat_vae_layer_norm DATA=gpu_data/cat.npz MINUTES=4 bash benchmarks/gpu_session.sh train
#       a resumable training chunk: starts from checkpoints/$MODEL/last.pt when it exists, stops
#       after $MINUTES, writes $OUT/last.pt (compact resume checkpoint, <= 12 MiB: commit it as
#       checkpoints/$MODEL/last.pt), $OUT/metrics.csv, $OUT/best.safetensors, $OUT/best.pt (for
#       scripts/ship_model.py).
# Results: $OUT/log.txt (every step's output, with its rc and time), $OUT/bench_train.json,
# $OUT/bench_sample.json and the training files: at most 8 files come back from a call.
#
# Data: ../shared does not travel to the GPU machine. Copy what the chunk needs into a folder
# the repo ignores and carry it, e.g. (here, before the call)
#   python benchmarks/make_gpu_data.py cat     # gpu_data/cat.sketches.xz: all 75,000 sketches, 24.4 MiB
#   grep -qx gpu_data .git/info/exclude || echo gpu_data >> .git/info/exclude
# and call run(..., carry=["gpu_data"]) with DATA=gpu_data/cat.sketches.xz (unpacked there to
# gpu_data/expanded/cat.npz; the working tree travels with a 64 MiB limit: with the checkpoints in git,
# a class's .npz does not fit, its .sketches.xz does). The first chunk on data other than the
# committed checkpoint's (e.g. after the 40,000-sketch subset of the first chunks): NEW_DATA=1.
# The call carries the working tree (tracked files + carry) up to 64 MiB: beside a .sketches.xz
# keep only the checkpoint the chunk resumes (checkpoints/README.md; git checkout -- checkpoints after).
# Predictions and outcomes go in benchmarks/NOTES_gpu.md.
set -uo pipefail
OUT=${OUT:-/tmp/sketchrnn-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
# no package index there: run from the source tree (torchrun's workers inherit this)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
LOG="$OUT/log.txt"
TMP=$(mktemp -d)

step() {  # step SECONDS NAME CMD...: run with a time limit; its output's tail goes to $LOG
  local limit=$1 name=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$TMP/$name.txt" 2>&1
  local rc=$?
  { echo; echo "===== $name: rc=$rc in $((SECONDS - t0)) s (limit $limit s)"; tail -c 60000 "$TMP/$name.txt"; } >> "$LOG"
  echo "[$name] rc=$rc in $((SECONDS - t0)) s (limit $limit s)"
}

checks() {  # checks TESTS_S BENCH_BUDGET_S SAMPLE_S TORCHRUN_S
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    cc --version | head -1; nproc; } >> "$LOG" 2>&1
  step "$1" gpu_tests $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_fast_decoder.py tests/test_train.py
  step "$(( $2 + 60 ))" bench_train $PY benchmarks/bench_train.py --budget-s "$2" --json-out "$OUT/bench_train.json"
  step "$3" bench_sample $PY benchmarks/bench_sample.py --batch 1000 --repeats 1 --json-out "$OUT/bench_sample.json"
  step "$4" torchrun_check bash benchmarks/gpu_torchrun_check.sh
}

train() {  # train MINUTES LIMIT_S
  MODEL=${MODEL:?set MODEL, e.g. cat_vae_layer_norm (configs/MODEL.json)}
  local RUN=runs/$MODEL
  mkdir -p "$RUN"
  local ARGS=(--config "configs/$MODEL.json" --out "$RUN" --device "${DEVICE:-cuda}" --max-minutes "$1" --no-progress)
  if [[ "${DATA:-}" == *.sketches.xz ]]; then  # the compact carry form: unpack it beside itself (seconds)
    step 120 expand_data $PY benchmarks/make_gpu_data.py --expand "$DATA"
    DATA="$(dirname "$DATA")/expanded/$(basename "${DATA%.sketches.xz}").npz"
  fi
  [ -n "${DATA:-}" ] && ARGS+=(--data $DATA)
  # SET="data.random_scale_factor=0 data.augment_stroke_prob=0": config overrides for this chunk
  [ -n "${SET:-}" ] && ARGS+=(--set $SET)
  if [ -f "checkpoints/$MODEL/last.pt" ] && [ ! -f "$RUN/last.pt" ]; then
    cp "checkpoints/$MODEL/last.pt" "$RUN/last.pt"
    # NEW_DATA=1: the committed checkpoint trained on other data (e.g. the 40,000-sketch subset):
    # go on with this data in a fresh order (weights, Adam, step, scale factor kept)
    [ -n "${NEW_DATA:-}" ] && ARGS+=(--new-data)
  fi
  [ -f "$RUN/last.pt" ] && ARGS+=(--resume)
  step "$2" train $PY -m sketchrnn train "${ARGS[@]}"
  # <= 12 MiB (the project's limit for tracked files; the issue allows 16): a paper-size LSTM /
  # LayerNorm VAE keeps its float32 weights only, Adam restarts with a 100-step warm-up
  # (checkpoints/README.md); a HyperLSTM VAE's weights alone take 13.3 MiB: MAX_MB=16
  step 60 compact $PY -m sketchrnn compact-checkpoint "$RUN/last.pt" --out "$OUT/last.pt" --max-mb "${MAX_MB:-12}"
  cp "$RUN/metrics.csv" "$OUT/metrics.csv" 2>/dev/null
  [ -f "$RUN/best.pt" ] && step 60 export $PY -m sketchrnn export "$RUN/best.pt" --out "$OUT/best.safetensors"
  # the best checkpoint itself (compacted like last.pt): what scripts/ship_model.py takes
  [ -f "$RUN/best.pt" ] && [ "${BEST_PT:-1}" = 1 ] && step 60 compact_best $PY -m sketchrnn compact-checkpoint "$RUN/best.pt" \
      --out "$OUT/best.pt" --max-mb "${MAX_MB:-12}"
  # the test-split figures of the exported (float16) weights, on the GPU (seconds, not CPU-minutes)
  [ -f "$OUT/best.safetensors" ] && [ -n "${DATA:-}" ] && step 90 evaluate $PY -m sketchrnn evaluate \
      --model "$OUT/best.safetensors" --data "${DATA%% *}" --split test --device "${DEVICE:-cuda}" --json
}

case "${1:-}" in
  checks)
    checks 170 200 70 80
    ;;
  train)
    # after `triton` on the same warm machine: its choice of the Triton steps and tiles
    [ -f runs/triton_env ] && [ -z "${SKETCHRNN_TRITON:-}" ] && . runs/triton_env && cat runs/triton_env >> "$LOG"
    MINUTES=${MINUTES:-4}
    # PRETEST="tests/test_precision.py": gpu tests first (~20-40 s; their output goes to the log)
    [ -n "${PRETEST:-}" ] && step 120 gpu_pretest $PY -m pytest -q -p no:cacheprovider -m gpu $PRETEST
    # e.g. PRETEST=tests/test_length_buckets.py SET="... train.length_buckets=50": a failed pretest
    # drops train.length_buckets from SET (the chunk then draws Magenta's random batches)
    if [ -n "${PRETEST:-}" ] && ! grep -q "^===== gpu_pretest: rc=0 " "$LOG" && [[ "${SET:-}" == *length_buckets* ]]; then
      SET=$(echo "$SET" | sed -E 's/train\.length_buckets=[0-9]+//')
      echo "gpu_pretest failed: train.length_buckets dropped, SET=$SET" | tee -a "$LOG"
    fi
    train "$MINUTES" "$(python3 -c "print(int(float('$MINUTES') * 60) + 120)")"
    ;;
  triton)
    # checks first, then (MODEL set, time left) a chunk; better: SESSION_S=330 without MODEL, then a
    # second call `MINUTES=... gpu_session.sh train` at once on the still-warm machine (2026-11-26:
    # the checks took ~7 minutes and left no time for a chunk in the same call)
    T_END=$((SECONDS + ${SESSION_S:-575}))
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
      $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
    } >> "$LOG" 2>&1
    step 150 gpu_tests_triton $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_triton_lstm.py
    step 120 gpu_tests_train $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_train.py tests/test_model_mdn.py
    TESTS_OK=$(grep -q "^===== gpu_tests_triton: rc=0 " "$LOG" && echo 1 || echo 0)
    # the chunk's shape first (rows are saved as they come; ~10 s per tile setting)
    step 150 bench_triton_b1000 $PY benchmarks/bench_triton_lstm.py --shapes dec512_T130_B1000 --no-gemm \
      --json-out "$OUT/bench_triton_lstm.json"
    # the fastest tile setting at the chunk's shape, if the Triton steps beat the compiled path by 5 %
    # at the precision the chunk trains in: CHUNK_PRECISION=highest (float32: the ieee rows or the
    # tf32x3 row against compiled float32; default) or high (the TF32 rows against compiled+TF32)
    read -r TILES FP32MODE < <($PY -c "
import json
rows = json.load(open('$OUT/bench_triton_lstm.json'))['rows']
exact = [r for r in rows if r['variant'] in ('triton', 'triton-tf32x3') and r.get('grad_rel_err', 1) <= 1e-5]
if '${CHUNK_PRECISION:-highest}' == 'high':
    cand = [r for r in rows if r['variant'] == 'triton+tf32'] if exact else []
else:
    cand = exact
cand = [r for r in cand if r.get('speedup_vs_compiled', 0) > 1.05]
best = max(cand, key=lambda r: r['speedup_vs_compiled'], default=None)
if best:
    print(','.join(map(str, best['fw_tiles'])) + ':' + ','.join(map(str, best['bw_tiles'])) + ':' + str(best['warps']),
          'tf32x3' if best['variant'] == 'triton-tf32x3' else 'ieee')
" 2>/dev/null)
    if [ "$TESTS_OK" = 1 ] && [ -n "${TILES:-}" ] && [ "${TRITON_TRAIN:-1}" = 1 ]; then
      export SKETCHRNN_TRITON=1 SKETCHRNN_TRITON_TILES="$TILES" SKETCHRNN_TRITON_FP32="${FP32MODE:-ieee}"
    fi
    echo "training (${CHUNK_PRECISION:-highest}) with SKETCHRNN_TRITON=${SKETCHRNN_TRITON:-0} tiles ${TILES:-none}" \
      "fp32 products ${SKETCHRNN_TRITON_FP32:-ieee} (tests ok: $TESTS_OK)" | tee -a "$LOG"
    # the same choice for a follow-up `train` call on the still-warm machine (runs/ stays there)
    mkdir -p runs && echo "export SKETCHRNN_TRITON=${SKETCHRNN_TRITON:-0} SKETCHRNN_TRITON_TILES='${TILES:-}'" \
      "SKETCHRNN_TRITON_FP32=${SKETCHRNN_TRITON_FP32:-ieee}" > runs/triton_env
    step 120 bench_train_triton $PY benchmarks/bench_train.py --sections timing,numerics --cells lstm \
      --variants reference,fast,fast+triton,fast+triton3x,fast+triton+tf32,fast+tf32 --steps 10 --ref-steps 2 --budget-s 100 \
      --json-out "$OUT/bench_train.json"
    # where a batch-1000 step goes: issue 3's LayerNorm B-1000 target (9,830 sketches/s in TF32 on the
    # H100 against a ~6-ms TF32 floor) and the cat chunk's products (same 1000x512 @ 512x2048); ~1 min
    [ $((T_END - SECONDS)) -ge 150 ] && step 90 profile_b1000 $PY benchmarks/profile_gpu.py --cell layer_norm \
      --variant fast+tf32 --batch 1000 --json-out "$OUT/profile_ln_b1000.json"
    [ $((T_END - SECONDS)) -ge 150 ] && step $((T_END - SECONDS - 20)) bench_triton_b100 $PY benchmarks/bench_triton_lstm.py \
      --shapes dec512,enc256x2 --json-out "$OUT/bench_triton_lstm_b100.json"
    LEFT=$((T_END - SECONDS - 75))
    if [ -n "${MODEL:-}" ] && [ "$LEFT" -ge 90 ]; then
      train "$(python3 -c "print(round(($LEFT - 50) / 60, 2))")" "$LEFT"
    else
      echo "no training chunk: ${LEFT} s left (MODEL=${MODEL:-unset})" | tee -a "$LOG"
    fi
    ;;
  persistent)
    # the persistent Triton kernels (one launch per recurrence, a barrier per step; written
    # 2026-11-27 without a GPU: compiled here for sm_90 only), at most ~9.5 minutes (run() timeout_s
    # 590; each step has its own limit): their gpu tests, the
    # recurrence benchmark (B 100, T 250, and B 1000, T 130, in waves: compiled, step kernels,
    # persistent tile settings, then the best with TF32 x3 and in TF32), the training step (B 100
    # and LayerNorm at B 1000); then the choice for a following `train`
    # call on this warm machine (runs/triton_env): the persistent kernels where their tests pass
    # and they beat the compiled path by 5 % at the chunk's precision (CHUNK_PRECISION, default high)
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
      $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
    } >> "$LOG" 2>&1
    # (2026-11-27, H200: every kernel test passed, the plain and LayerNorm graph tests too; the
    # float32 recurrences were no faster than the step kernels. Open: the TF32 rows, the HyperLSTM
    # graph test under its float64 criterion, B 1000 and the training step)
    step 150 gpu_tests_persistent $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_triton_lstm.py \
      tests/test_triton_hyper.py -k "${PTESTS:-graph_captured}"
    TESTS_OK=$(grep -q "^===== gpu_tests_persistent: rc=0 " "$LOG" && echo 1 || echo 0)
    step 170 bench_persistent $PY benchmarks/bench_triton_lstm.py --shapes dec512,ln512 --ptiles 1 \
      --no-gemm --persistent --json-out "$OUT/bench_triton_lstm.json"
    # (the HyperLSTM cell: its persistent kernels vs compiled)
    step 200 bench_train_persistent $PY benchmarks/bench_train.py --sections timing,big \
      --cells lstm,layer_norm,hyper --variants fast,fast+persistent3x,fast+persistent+tf32,fast+tf32,fast+persistent --steps 10 \
      --budget-s 170 --json-out "$OUT/bench_train.json"
    step 120 bench_persistent_b1000 $PY benchmarks/bench_triton_lstm.py --shapes dec512_T130_B1000 --ptiles 1 \
      --no-gemm --persistent --json-out "$OUT/bench_triton_b1000.json"
    read -r PTILES < <($PY -c "
import json
rows = [r for r in json.load(open('$OUT/bench_triton_lstm.json'))['rows'] if r['shape'] == 'dec512']
want = 'persistent+tf32' if '${CHUNK_PRECISION:-high}' == 'high' else 'persistent'
ok = [r for r in rows if r['variant'] == 'persistent' and r.get('grad_rel_err', 1) <= 1e-5]
cand = [r for r in rows if r['variant'] == want and r.get('speedup_vs_compiled', 0) > 1.05] if ok else []
best = max(cand, key=lambda r: r['speedup_vs_compiled'], default=None)
if best:
    print(','.join(map(str, best['fw_tiles'])) + ':' + ','.join(map(str, best['bw_tiles'])) + ':' + str(best['warps']))
" 2>/dev/null)
    mkdir -p runs
    if [ "$TESTS_OK" = 1 ] && [ -n "${PTILES:-}" ]; then
      echo "export SKETCHRNN_TRITON=1 SKETCHRNN_TRITON_PERSISTENT=1 SKETCHRNN_TRITON_PTILES='$PTILES'" > runs/triton_env
    else
      echo "export SKETCHRNN_TRITON=0" > runs/triton_env
    fi
    echo "next train call: $(cat runs/triton_env) (tests ok: $TESTS_OK)" | tee -a "$LOG"
    ;;
  all)
    BEST_PT=0  # at most 8 files come back: this mode writes 5 JSON/log files besides the chunk's
    T_END=$((SECONDS + ${SESSION_S:-575}))
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
      $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >> "$LOG" 2>&1
    step 110 gpu_tests $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_fast_decoder.py tests/test_train.py
    # issue 8: the fast path under DDP (the train.fast=false pair passed on an H100 on 2026-11-26)
    step 90 torchrun_fast env FAST_MODES=true bash benchmarks/gpu_torchrun_check.sh
    step 150 numerics $PY benchmarks/bench_train.py --sections numerics --variants reference,fast-eager,fast,fast+tf32 \
      --budget-s 100 --json-out "$OUT/bench_train.json"
    # the launch-bound layout of 2026-11-26 vs without (kernel-like ops per time step: LayerNorm 14 -> 10, Hyper 34 -> 19)
    step 150 ab_timing $PY benchmarks/bench_train.py --sections timing --cells layer_norm,hyper --variants fast,fast-nolb \
      --budget-s 120 --json-out "$OUT/bench_ab.json"
    step 45 bench_sample $PY benchmarks/bench_sample.py --batch 1000 --repeats 1 --json-out "$OUT/bench_sample.json"
    step 60 profile $PY benchmarks/profile_gpu.py --cell lstm --json-out "$OUT/profile_lstm.json"
    LEFT=$((T_END - SECONDS - 75))  # compaction, export and evaluation after the chunk
    if [ -n "${MODEL:-}" ] && [ "$LEFT" -ge 90 ]; then
      train "$(python3 -c "print(round(($LEFT - 50) / 60, 2))")" "$LEFT"
    else
      echo "no training chunk: ${LEFT} s left (MODEL=${MODEL:-unset})" | tee -a "$LOG"
    fi
    ;;
  *)
    sed -n '2,29p' "$0"
    exit 2
    ;;
esac
rm -rf "$TMP"
