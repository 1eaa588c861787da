#!/usr/bin/env bash
# Reproduces the README's "Choir sections" table on the generated sets: the held-out "Choir
# Aahs" chorales (items 0009-0013, one "Choir Aahs" patch per part) and the same chorales sung
# by sections of three singers per part (--section-size 3), separated with the true F0 by the
# bundled model (as it is, with --synth-noise 0, and with a 10-cent section width), the
# choir model (with its own masks and with plain ones), F0-informed NMF, the oracle masks and
# the partials ceiling at 0-45 cents.
# The choir model was trained on items 0000-0008 of both sets. About 20 minutes on a 2-core
# CPU, most of it rendering (fluidsynth loads the 86 MB MuseScore General again for every
# stem and singer).
#   bash examples/reproduce_choir_results.sh [WORKDIR]
set -euo pipefail
work=${1:-out/choir_results}
bin=.venv/bin
# The README's tables here were measured with one 2048-sample mask STFT; MASKS= (empty) separates
# with separate's default since 2026-12-03, two resolutions (README, "Two resolutions").
masks=${MASKS---low-n-fft 0}
soundfont=/usr/share/sounds/sf3/MuseScore_General.sf3  # Debian musescore-general-soundfont
mkdir -p "$work"

for size in 1 3; do
  $bin/sfgraph data bach "$work/all$size" --count 14 --seconds 20 --soundfont "$soundfont" --program choir \
    --per-chorale 1 --seed 1 --section-size "$size" --workers 2 --quiet --force
  rm -rf "$work/test$size" && mkdir -p "$work/test$size"
  for item in "$work/all$size"/*/; do
    case "$(basename "$item")" in 0009_*|001[0-3]_*) cp -r "$item" "$work/test$size/" ;; esac
  done
done

for size in 1 3; do
  test=$work/test$size
  out=$work/estimates$size
  for item in "$test"/*/; do
    name=$(basename "$item")
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" -o "$out/bundled/$name" -q
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --synth-noise 0 -o "$out/bundled_noise0/$name" -q
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --synth-noise 0 --section-cents 10 \
      -o "$out/bundled_width10/$name" -q
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model sfgraph:models/choir -o "$out/choir/$name" -q
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" --model sfgraph:models/choir --section-cents 0 \
      --synth-noise 1 -o "$out/choir_plain/$name" -q
  done
  $bin/sfgraph baseline nmf "$test" -o "$out/nmf" --quiet
  $bin/sfgraph baseline oracle "$test" -o "$out/oracle" --quiet
  # "How far one harmonic comb per part can go": partials of each width, levels from the stems
  partials=()
  for cents in 0 10 20 30 45; do
    $bin/sfgraph baseline partials "$test" -o "$out/partials$cents" --spread-cents "$cents" --quiet
    partials+=("partials$cents")
  done
  estimates=()
  for method in oracle nmf "${partials[@]}" bundled bundled_noise0 bundled_width10 choir choir_plain; do
    estimates+=(--estimates "$method=$out/$method")
  done
  $bin/sfgraph eval "$test" -o "$work/report$size" --quiet "${estimates[@]}"
done
