#!/usr/bin/env bash
# The recipe of the shipped cotracker_fast_small weights, in two stages on a CPU:
#   A. camera motion only (no objects, no augmentation): the model learns to read the correlation volume;
#   B. layered scenes with moving objects, occlusion and the photometric augmentations, from A's weights.
# Each stage resumes from its own runs/<name>/last.pt when re-run. Extra arguments go to stage B
# (e.g. --set max_time_s=6000). Export the result with train/export_weights.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -n "$(ls ~/.cache/cotracker_fast/train_photos 2>/dev/null)" ] || train/fetch_photos.sh
$PY train/train.py --config train/configs/ship_small_a_camera.json
$PY train/export_weights.py runs/ship_small_a_camera/last.pt runs/ship_small_a_camera.safetensors --dtype float32
$PY train/train.py --config train/configs/ship_small_b_scenes.json "$@"
