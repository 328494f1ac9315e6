#!/usr/bin/env bash
# Collect photographs from Debian packages.
# Training set (default): the sample photos that ship with Debian's opencv-doc package (scenes, objects, faces, a
# painting). None of them is the demo's photograph or one of the held-out evaluation photographs
# (cotracker_fast/assets/heldout/); the aerial photos are left out too, as the held-out set has an aerial image.
# Validation set (--validation): the twelve nature photographs of Debian's mate-backgrounds package (flowers, leaves,
# grass, water, sky, wood): neither training photographs nor the demo's or a held-out one, so clips made from them
# (train/select_checkpoint.py --photo-dir) resemble the held-out photo set without sharing its images.
# Wider training set (--more): the training set plus twelve photographs from Debian's Plasma and Lomiri wallpaper
# packages (a pier, boats, leaves, moss, a forest path, a tree trunk, cups, a building, sky and lakes), scaled down to
# at most 1280 px on the long side so a training crop holds structure at the scale of the other photographs.
# Widest training set (--wider): the wider set plus fourteen photographs of Debian's lomiri-wallpapers-16.04 (a bridge,
# leaves, a fig on a plate, brushes, a room, mountains, a bird, a cat at a window, a clock, a stream, dandelions, a
# sunset, a textured surface; the one abstract image is left out), scaled the same way.
# Textured training set (--textured): the widest set plus 25 photographic ground textures of Debian's ufoai-textures
# (rock faces, moss, grass, dirt, sand, gravel, snow, bark, leafy plants: one of each look where the package has
# near-copies; no normal maps and no patterned tiles such as vehicle tracks), as JPEG.
#   usage: train/fetch_photos.sh [--validation | --more | --wider | --textured] [DEST]
#          (default DEST: ~/.cache/cotracker_fast/train_photos, .../validation_photos with --validation,
#          .../train_photos_more with --more, .../train_photos_wider with --wider, .../train_photos_textured with
#          --textured)
set -euo pipefail
PY="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python"
SET=training
case "${1:-}" in
  --validation) SET=validation; shift ;;
  --more) SET=more; shift ;;
  --wider) SET=wider; shift ;;
  --textured) SET=textured; shift ;;
esac
case $SET in
  training) DEST="${1:-$HOME/.cache/cotracker_fast/train_photos}" ;;
  validation) DEST="${1:-$HOME/.cache/cotracker_fast/validation_photos}" ;;
  more) DEST="${1:-$HOME/.cache/cotracker_fast/train_photos_more}" ;;
  wider) DEST="${1:-$HOME/.cache/cotracker_fast/train_photos_wider}" ;;
  textured) DEST="${1:-$HOME/.cache/cotracker_fast/train_photos_textured}" ;;
esac
DEST="$(mkdir -p "$DEST" && cd "$DEST" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if [ $SET != validation ]; then
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
shrink() {  # shrink SOURCE NAME [PREFIX]: SOURCE scaled to at most 1280 px on the long side, as
            # DEST/PREFIX_NAME.jpg (PREFIX: wallpaper)
  "$PY" -c 'import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
im.thumbnail((1280, 1280), Image.LANCZOS)
im.save(sys.argv[2], quality=95)' "$1" "$DEST/${3:-wallpaper}_$2.jpg"
}
if [ $SET = more ] || [ $SET = wider ] || [ $SET = textured ]; then
  apt-get download plasma-workspace-wallpapers lomiri-wallpapers-20.04 >/dev/null
  for d in plasma-workspace-wallpapers_*.deb lomiri-wallpapers-20.04_*.deb; do dpkg-deb -x "$d" wallpapers; done
  W=wallpapers/usr/share/wallpapers
  # name=source: the largest size each Plasma wallpaper ships (the 1920x1080 name holds 2560x1600 pixels)
  for pair in BytheWater=$W/BytheWater/contents/images/1920x1080.jpg \
              ColdRipple=$W/ColdRipple/contents/images/2560x1600.jpg \
              ColorfulCups=$W/ColorfulCups/contents/images/2560x1600.jpg \
              DarkestHour=$W/DarkestHour/contents/images/1920x1080.jpg \
              EveningGlow=$W/EveningGlow/contents/images/1920x1080.jpg \
              FallenLeaf=$W/FallenLeaf/contents/images/1920x1080.jpg \
              Grey=$W/Grey/contents/images/2560x1600.jpg \
              Kite=$W/Kite/contents/images/1920x1080.jpg \
              OneStandsOut=$W/OneStandsOut/contents/images/1920x1080.jpg \
              Path=$W/Path/contents/images/1920x1080.jpg \
              summer_1am=$W/summer_1am/contents/images/1920x1080.jpg \
              Kleiber=wallpapers/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg; do
    shrink "${pair#*=}" "${pair%%=*}"
  done
fi
if [ $SET = wider ] || [ $SET = textured ]; then
  apt-get download lomiri-wallpapers-16.04 >/dev/null
  dpkg-deb -x lomiri-wallpapers-16.04_*.deb wallpapers16
  for f in wallpapers16/usr/share/backgrounds/*.jpg; do
    name=$(basename "$f" .jpg)
    [ "$name" = umang_by_Abhishek_Mudgal ] || shrink "$f" "$name"
  done
fi
if [ $SET = textured ]; then
  apt-get download ufoai-textures >/dev/null
  dpkg-deb -x ufoai-textures_*.deb ufoai
  unzip -q ufoai/usr/share/games/ufoai/base/0textures.pk3 'textures/tex_nature/*' -d ufoai
  for name in desert002 desert007 dirt003 jungle002 pjrock1 pjrock16 pjrock21 potatoes railway rock001 rock004 \
              rock008 rock009 rock012 rock014 rock017 rock018 rockyground01 snow003 stone001 tree001; do
    shrink ufoai/textures/tex_nature/$name.png "$name" texture
  done
  for name in grass004 grass_mowed_dry_a grass_mowed_green_a grass_tall_green_a; do
    shrink ufoai/textures/tex_nature/$name.jpg "$name" texture
  done
fi
echo "$(ls "$DEST" | wc -l) photographs in $DEST"
