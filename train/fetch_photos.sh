#!/usr/bin/env bash
# Collect the training photographs: the sample photos that ship with Debian's opencv-doc package (scenes, objects,
# faces, a painting). None of them is the demo's photograph or one of the held-out evaluation photographs
# (cotracker_fast/assets/heldout/); the aerial photos are left out too, as the held-out set has an aerial image.
#   usage: train/fetch_photos.sh [DEST]     (default DEST: ~/.cache/cotracker_fast/train_photos)
set -euo pipefail
DEST="${1:-$HOME/.cache/cotracker_fast/train_photos}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get download opencv-doc >/dev/null
dpkg-deb -x opencv-doc_*.deb extracted
SRC=extracted/usr/share/doc/opencv-doc/examples/data
mkdir -p "$DEST"
for f in HappyFish.jpg aloeL.jpg apple.jpg baboon.jpg basketball1.png blox.jpg board.jpg box_in_scene.png \
         building.jpg butterfly.jpg chicky_512.png ela_original.jpg fruits.jpg graf1.png home.jpg leuvenA.jpg \
         messi5.jpg orange.jpg rubberwhale1.png smarties.png squirrel_cls.jpg starry_night.jpg stuff.jpg left.jpg \
         Blender_Suzanne1.jpg; do
  cp "$SRC/$f" "$DEST/"
done
echo "$(ls "$DEST" | wc -l) photographs in $DEST"
