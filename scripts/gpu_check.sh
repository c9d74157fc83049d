#!/usr/bin/env bash
# Everything the GPU must show, in one run within the device's 15 minutes:
#  1. a training run that fits its budget (vision_banana_ros/training/gpu_run.py): renders
#     real-scale scenes on the machine's cores (or takes carried shards, SHARDS=DIR), trains the
#     RGB-D recipe from the shipped model, writes the checkpoint, snapshots and figures;
#  2. torch CUDA fp32 / fp16 / CUDA graphs end to end on a 640x480 frame, parity against CPU
#     fp32, ONNX Runtime CUDA and TensorRT where present (bench/gpu_check.py).
#   scripts/gpu_check.sh [OUT_DIR]            (default: $OUT or ./gpu_check_out)
#   TRAIN_SECONDS=300 scripts/gpu_check.sh    (training budget; 0 skips training; the
#                                             device runs one command for at most 600 s:
#                                             train and measure in separate commands there)
#   GPU_CHECK_ARGS="--cpu-dry-run" scripts/gpu_check.sh   (test the script without a GPU)
#   VB_PYTHON=/path/python scripts/gpu_check.sh  (the interpreter; default: the first of
#                                             python3 and .venv/bin/python whose torch sees
#                                             CUDA: the development venv's torch is CPU-only)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check_out}}
mkdir -p "$out"
py=${VB_PYTHON:-}
if [ -z "$py" ]; then
  for candidate in python3 .venv/bin/python; do
    if command -v "$candidate" >/dev/null && "$candidate" -c \
        "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      py=$candidate; break
    fi
  done
fi
if [ -z "$py" ]; then  # no CUDA torch: the dry run (or a clear error from gpu_check)
  py=python3
  [ -x .venv/bin/python ] && py=.venv/bin/python
fi
echo "gpu_check: using $py"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia_smi.csv" \
  2>/dev/null || echo "no nvidia-smi" > "$out/nvidia_smi.csv"
train_seconds=${TRAIN_SECONDS:-300}
if [ "$train_seconds" != "0" ]; then
  dry=""
  case "${GPU_CHECK_ARGS:-}" in *--cpu-dry-run*) dry="--cpu-dry-run" ;; esac
  "$py" -m vision_banana_ros.training.gpu_run --out "$out/train" --budget-s "$train_seconds" \
    ${SHARDS:+--shards "$SHARDS"} $dry
fi
"$py" -m vision_banana_ros.bench.gpu_check --out "$out/gpu_check.json" ${GPU_CHECK_ARGS:-}
echo "gpu_check: wrote $out/gpu_check.json${train_seconds:+ and $out/train}"
