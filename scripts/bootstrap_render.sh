#!/usr/bin/env bash
# The photoreal renderer's environment: Blender 5.0 as a Python module (bpy needs Python 3.11
# and numpy < 2, so it gets a virtual environment of its own), plus robosuite's photographic
# textures taken out of its wheel into the cache. About 1 GB; `make render-env` calls this.
set -euo pipefail
venv=${1:-.venv-render}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r requirements-render.txt
PYTHONPATH="$PWD" "$venv/bin/python" -c "
from vision_banana_ros.synthetic.textures import fetch_photo_textures
print(f'render-env: {fetch_photo_textures()} photographic textures cached')"
echo "render-env: ready ($venv); vision-banana render --renderer blender uses it"
