#!/usr/bin/env bash
# Reproduces the README's "Real singing" table: separation of real recordings with true F0 by
# the oracle masks, F0-informed NMF, a model (masks fitted to the mixture, the default, and
# plain masks, --mask-fit 0), that model adapted to each recording (--adapt 1 and 3), and the model with
# F0 from the mixture (--f0 auto: multi-F0 refined on a first separation; and the multi-F0 alone).
# The model is the bundled one, or with VARIED=1 one trained first on the
# varied soundfont material (1300 steps at most, 60 minutes).
#   [VARIED=1 | MODEL=FOLDER] bash examples/reproduce_real_results.sh REAL_DATASET [WORKDIR]
# REAL_DATASET: a dataset folder with stems (e.g. the developers' ../shared/real_dev).
set -euo pipefail
real=${1:?usage: reproduce_real_results.sh REAL_DATASET [WORKDIR]}
work=${2:-out/real_results}
bin=.venv/bin
# The README's tables here were measured with one 2048-sample mask STFT; MASKS= (empty) separates
# with separate's default since 2026-12-03, two resolutions (README, "Two resolutions").
masks=${MASKS---low-n-fft 0}
mkdir -p "$work"

if [[ "${VARIED:-0}" == 1 ]]; then
  # 40 chorales of 20 s (seed 1, as the Bach results): each voice of each chorale sings its own patch
  # (Voice Oohs or Choir Aahs from every installed GM soundfont), in a room, with breath noise.
  # Items 9-13 are the Bach results' test chorales: kept out of training.
  $bin/sfgraph data bach "$work/varied" --count 40 --seconds 20 --soundfont all --program solo,choir \
    --reverb 0.3 --breath-db -25 --per-chorale 1 --seed 1 --quiet --force
  rm -rf "$work/train" && mkdir -p "$work/train"
  for item in "$work"/varied/*/; do
    case "$(basename "$item")" in 0009_*|001[0-3]_*) ;; *) cp -r "$item" "$work/train/" ;; esac
  done
  $bin/sfgraph train "$work/train" -o "$work/model" --force --steps 1300 --eval-every 100 --batch-size 8 \
    --hidden 192 --patience 30 --max-minutes 60
  MODEL=$work/model
fi
MODEL=${MODEL:-sfgraph:models/default}

for item in "$real"/*/; do
  name=$(basename "$item")
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$MODEL" -o "$work/estimates/model/$name" -q
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$MODEL" --mask-fit 0 \
    -o "$work/estimates/model_plain/$name" -q
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 auto --model "$MODEL" -o "$work/estimates/model_auto/$name" -q
  # the table's first two rows: separate's default masks (two resolutions)
  $bin/sfgraph separate "$item/mix.wav" --f0 "$item/f0" --model "$MODEL" -o "$work/estimates/two_res/$name" -q
  $bin/sfgraph separate "$item/mix.wav" --f0 auto --model "$MODEL" -o "$work/estimates/two_res_auto/$name" -q
  $bin/sfgraph f0 "$item/mix.wav" --method multif0 -o "$work/f0_multif0/$name" >/dev/null
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$work/f0_multif0/$name" --model "$MODEL" \
    -o "$work/estimates/model_multif0/$name" -q
  for minutes in 1 3; do
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model "$MODEL" --adapt "$minutes" \
      -o "$work/estimates/adapt$minutes/$name" -q
  done
done
$bin/sfgraph baseline nmf "$real" -o "$work/estimates/nmf" --quiet
$bin/sfgraph baseline oracle "$real" -o "$work/estimates/oracle" --quiet
$bin/sfgraph baseline mixture "$real" -o "$work/estimates/mixture" --quiet
estimates=()
for method in two_res two_res_auto model model_plain model_auto model_multif0 adapt1 adapt3 nmf oracle mixture; do
  estimates+=(--estimates "$method=$work/estimates/$method")
done
$bin/sfgraph eval "$real" -o "$work/report" --quiet "${estimates[@]}"
