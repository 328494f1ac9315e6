#!/usr/bin/env bash
# Collect the validation photographs: the twelve nature photographs of Debian's mate-backgrounds package (flowers,
# leaves, grass, water, sky, wood). They are neither training photographs (train/fetch_photos.sh) nor the demo's or a
# held-out photograph, so clips made from them (train/select_checkpoint.py --photo-dir) resemble the held-out photo
# set without sharing its images.
#   usage: train/fetch_validation_photos.sh [DEST]     (default DEST: ~/.cache/cotracker_fast/validation_photos)
set -euo pipefail
DEST="${1:-$HOME/.cache/cotracker_fast/validation_photos}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get download mate-backgrounds >/dev/null
dpkg-deb -x mate-backgrounds_*.deb extracted
mkdir -p "$DEST"
cp extracted/usr/share/backgrounds/mate/nature/*.jpg "$DEST/"
echo "$(ls "$DEST" | wc -l) photographs in $DEST"
