#!/usr/bin/env bash
# Everything the GPU must show, in one run: torch CUDA backend fp32 / fp16 / CUDA graphs end to
# end on a 640x480 frame, parity against CPU fp32 (paintings and metrics), ONNX Runtime CUDA and
# TensorRT when present, and a timed training run. Figures go to one JSON file.
#   scripts/gpu_check.sh [OUT_DIR]          (default: $OUT or ./gpu_check_out)
#   GPU_CHECK_ARGS="--cpu-dry-run" scripts/gpu_check.sh   (test the script without a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check_out}}
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia_smi.csv" \
  2>/dev/null || echo "no nvidia-smi" > "$out/nvidia_smi.csv"
"$py" -m vision_banana_ros.bench.gpu_check --out "$out/gpu_check.json" ${GPU_CHECK_ARGS:-}
echo "gpu_check: wrote $out/gpu_check.json"
