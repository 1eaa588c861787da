#!/usr/bin/env bash
# Reproduces the README's separation table: generate Bach data (solo-voice patch),
# train on 3 minutes of it, separate 5 held-out chorales, score against NMF, the
# oracle masks and the mixture. About 35 minutes on a 2-core CPU; with CEILING=1, also
# the voice model's ceiling (voices fitted to the true stems, power mask), 80 minutes more.
#   [CEILING=1] [SOUNDFONT=FILE.sf2] bash examples/reproduce_bach_results.sh [WORKDIR]
set -euo pipefail
work=${1:-out/bach_results}
bin=.venv/bin
# The README's tables here were measured with one 2048-sample mask STFT; MASKS= (empty) separates
# with separate's default since 2026-12-03, two resolutions (README, "Two resolutions").
masks=${MASKS---low-n-fft 0}
# The results depend on the patch: the README's were made with FluidR3_GM (Debian fluid-soundfont-gm).
soundfont=${SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
mkdir -p "$work"

# 14 different chorales of 20 s: 9 to train on (3 min, one held out for validation), 5 to test on
$bin/sfgraph data bach "$work/all" --count 14 --seconds 20 --soundfont "$soundfont" --program solo \
  --per-chorale 1 --seed 1 --quiet --force
rm -rf "$work/train" "$work/test" && mkdir -p "$work/train" "$work/test"
for item in "$work"/all/*/; do
  name=$(basename "$item")
  case "$name" in 000[0-8]_*) cp -r "$item" "$work/train/" ;; *) cp -r "$item" "$work/test/" ;; esac
done

$bin/sfgraph train "$work/train" -o "$work/model" --steps 1500 --eval-every 100 --batch-size 8 --hidden 192 \
  --threads 2 --max-minutes 27 --patience 30

for item in "$work"/test/*/; do
  name=$(basename "$item")
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$work/model" -o "$work/estimates/ours/$name" -q
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$work/model" -o "$work/estimates/ours_power/$name" -q \
    --power 2
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$work/model" -o "$work/estimates/ours_plain/$name" -q \
    --mask-fit 0
done
$bin/sfgraph baseline nmf "$work/test" -o "$work/estimates/nmf" --quiet
$bin/sfgraph baseline nmf "$work/test" -o "$work/estimates/nmf_power" --mask power --quiet
$bin/sfgraph baseline oracle "$work/test" -o "$work/estimates/oracle" --quiet
$bin/sfgraph baseline oracle "$work/test" -o "$work/estimates/oracle_power" --mask power --quiet
$bin/sfgraph baseline mixture "$work/test" -o "$work/estimates/mixture" --quiet
methods=(ours ours_power ours_plain nmf nmf_power oracle oracle_power mixture)
if [[ "${CEILING:-0}" == 1 ]]; then  # 1000 fitting steps: about 16 minutes per item
  $bin/sfgraph baseline fitted "$work/test" -o "$work/estimates/fitted_power" --model "$work/model" --mask power \
    --steps 1000 --quiet
  methods+=(fitted_power)
fi
estimates=()
for method in "${methods[@]}"; do estimates+=(--estimates "$method=$work/estimates/$method"); done
$bin/sfgraph eval "$work/test" -o "$work/report" --quiet "${estimates[@]}"
