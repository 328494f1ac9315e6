#!/usr/bin/env bash
# Collect photographs from Debian packages.
# Training set (default): the sample photos that ship with Debian's opencv-doc package (scenes, objects, faces, a
# painting). None of them is the demo's photograph or one of the held-out evaluation photographs
# (cotracker_fast/assets/heldout/); the aerial photos are left out too, as the held-out set has an aerial image.
# Validation set (--validation): the twelve nature photographs of Debian's mate-backgrounds package (flowers, leaves,
# grass, water, sky, wood): neither training photographs nor the demo's or a held-out one, so clips made from them
# (train/select_checkpoint.py --photo-dir) resemble the held-out photo set without sharing its images.
#   usage: train/fetch_photos.sh [--validation] [DEST]
#          (default DEST: ~/.cache/cotracker_fast/train_photos, or .../validation_photos with --validation)
set -euo pipefail
SET=training
if [ "${1:-}" = "--validation" ]; then
  SET=validation
  shift
fi
if [ $SET = training ]; then
  DEST="${1:-$HOME/.cache/cotracker_fast/train_photos}"
else
  DEST="${1:-$HOME/.cache/cotracker_fast/validation_photos}"
fi
DEST="$(mkdir -p "$DEST" && cd "$DEST" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if [ $SET = training ]; then
  apt-get download opencv-doc >/dev/null
  dpkg-deb -x opencv-doc_*.deb extracted
  SRC=extracted/usr/share/doc/opencv-doc/examples/data
  for f in HappyFish.jpg aloeL.jpg apple.jpg baboon.jpg basketball1.png blox.jpg board.jpg box_in_scene.png \
           building.jpg butterfly.jpg chicky_512.png ela_original.jpg fruits.jpg graf1.png home.jpg leuvenA.jpg \
           messi5.jpg orange.jpg rubberwhale1.png smarties.png squirrel_cls.jpg starry_night.jpg stuff.jpg left.jpg \
           Blender_Suzanne1.jpg; do
    cp "$SRC/$f" "$DEST/"
  done
else
  apt-get download mate-backgrounds >/dev/null
  dpkg-deb -x mate-backgrounds_*.deb extracted
  cp extracted/usr/share/backgrounds/mate/nature/*.jpg "$DEST/"
fi
echo "$(ls "$DEST" | wc -l) photographs in $DEST"
