#!/usr/bin/env bash
# Fine-tunes the bundled multi-F0 salience model (sfgraph:models/multif0, trained on
# FluidR3 "Voice Oohs" and "Choir Aahs" by examples/reproduce_f0_results.sh) on more
# varied generated singing, as measured in the README ("Fine-tuning the salience network"):
#   - three soundfonts, solo / choir / synth voice patches drawn per voice, room reverb and
#     breath noise;
#   - Festival's diphone voice singing words (its own timing, glides between notes)
#     beside FluidR3 voices;
#   - MuseScore General "Choir Aahs" sung by one and by three singers per part (the choir
#     model's training chorales, README "Choir sections").
# Use the result with `sfgraph f0 --multif0-model WORKDIR/multif0_model` or the f0_multi
# node's model param.
# None of the held-out chorales (the separation and F0 tables' tests, the Choir Aahs F0
# set, the test fixture's, the demo clip's) is trained on. About 35 minutes of rendering
# and 7 of training on a 2-core CPU.
#   bash examples/tune_multif0.sh [WORKDIR]
set -euo pipefail
work=${1:-out/tune_multif0}
bin=.venv/bin
sf2=/usr/share/sounds/sf2
sf3=/usr/share/sounds/sf3/MuseScore_General.sf3
mkdir -p "$work"

$bin/sfgraph data bach "$work/varied" --count 40 --seconds 20 --soundfont "$sf2/FluidR3_GM.sf2,$sf2/TimGM6mb.sf2,$sf3" \
  --program solo,choir,synth --reverb 0.3 --breath-db -25 --per-chorale 1 --seed 1 --quiet --force
$bin/sfgraph data bach "$work/festival" --count 16 --seconds 20 --soundfont "festival,$sf2/FluidR3_GM.sf2" \
  --program solo --per-chorale 1 --seed 7 --quiet --force
$bin/sfgraph data bach "$work/aahs1" --count 14 --seconds 20 --soundfont "$sf3" --program choir --per-chorale 1 \
  --seed 1 --quiet --force
$bin/sfgraph data bach "$work/aahs3" --count 9 --seconds 20 --soundfont "$sf3" --program choir --per-chorale 1 \
  --seed 1 --section-size 3 --quiet --force

# one training folder of links, without the held-out chorales
held_out="bwv64.8 bwv40.8 bwv36.8-2 bwv139.6 bwv365 bwv159.5 bwv93.7 bwv343 bwv80.8 bwv310 bwv177.4 bwv84.5"
rm -rf "$work/train" && mkdir -p "$work/train"
for item in "$work"/{varied,festival,aahs1,aahs3}/*/; do
  chorale=$(basename "$item" | sed -E 's/^[0-9]+_(.*)_[0-9]+$/\1/')
  tr ' ' '\n' <<<"$held_out" | grep -qxF -- "$chorale" && continue
  ln -s "$(realpath "$item")" "$work/train/$(basename "$(dirname "$item")")_$(basename "$item")"
done
$bin/sfgraph train-f0 "$work/train" -o "$work/multif0_model" --init sfgraph:models/multif0 \
  --steps 1000 --eval-every 100 --lr 5e-4 --max-minutes 16
