#!/usr/bin/env bash
# Reproduces the README's F0 tables: trains the multi-F0 salience network on generated
# Bach data (none of the test chorales), estimates every voice's F0 of the 5 held-out
# chorales of examples/reproduce_bach_results.sh from the mixture (multi-F0) and from
# the isolated stems (CREPE tiny, the close-microphone case), scores the F0s with
# mir_eval, and separates with each F0 source using the bundled separation model.
# About 20 minutes on a 2-core CPU.
#   [SOUNDFONT=FILE.sf2] bash examples/reproduce_f0_results.sh [WORKDIR]
set -euo pipefail
work=${1:-out/f0_results}
bin=.venv/bin
# The README's tables here were measured with one 2048-sample mask STFT; MASKS= (empty) separates
# with separate's default since 2026-12-03, two resolutions (README, "Two resolutions").
masks=${MASKS---low-n-fft 0}
# The results depend on the patch: the README's were made with FluidR3_GM (Debian fluid-soundfont-gm).
soundfont=${SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
mkdir -p "$work"

# The test set: the same 14 chorales as reproduce_bach_results.sh, of which the last 5 are tested on.
$bin/sfgraph data bach "$work/all" --count 14 --seconds 20 --soundfont "$soundfont" --program solo \
  --per-chorale 1 --seed 1 --quiet --force
rm -rf "$work/test" && mkdir -p "$work/test"
for item in "$work"/all/*/; do
  case "$(basename "$item")" in 000[0-8]_*) ;; *) cp -r "$item" "$work/test/" ;; esac
done

# Training data for the salience network: other chorales, solo and choir patches (23 min of audio).
$bin/sfgraph data bach "$work/f0_train/solo" --count 40 --seconds 20 --soundfont "$soundfont" --program solo \
  --per-chorale 1 --seed 7 --quiet --force
$bin/sfgraph data bach "$work/f0_train/choir" --count 30 --seconds 20 --soundfont "$soundfont" --program choir \
  --per-chorale 1 --seed 8 --quiet --force
# Held out: the test chorales, the demo clip's (bwv80.8) and the test fixture's.
held_out=$(ls "$work/test" tests/fixtures/bach_tiny | grep -E '^[0-9]+_' | sed -E 's/^[0-9]+_(.*)_[0-9]+$/\1/'
           echo bwv80.8)
for item in "$work"/f0_train/*/*/; do
  chorale=$(basename "$item" | sed -E 's/^[0-9]+_(.*)_[0-9]+$/\1/')
  if grep -qx "$chorale" <<<"$held_out"; then rm -rf "$item"; fi
done
$bin/sfgraph train-f0 "$work/f0_train/solo" "$work/f0_train/choir" -o "$work/multif0_model" \
  --steps 2400 --max-minutes 30 --eval-every 200

for item in "$work"/test/*/; do
  name=$(basename "$item")
  $bin/sfgraph f0 "$item/mix.wav" -o "$work/f0/multif0/$name" --method multif0 \
    --multif0-model "$work/multif0_model" >/dev/null
  $bin/sfgraph f0 "$item/stems" -o "$work/f0/crepe/$name" --method crepe >/dev/null
  # plain masks, as the README's table was measured (before the mask fit)
  for source in multif0 crepe; do
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$work/f0/$source/$name" -o "$work/estimates/$source/$name" -q \
      --mask-fit 0
  done
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" -o "$work/estimates/true_f0/$name" -q --mask-fit 0
done
$bin/sfgraph eval-f0 "$work/test" --estimates multif0="$work/f0/multif0" --estimates crepe="$work/f0/crepe" \
  -o "$work/f0_scores.json" | tee "$work/f0_report.txt"
$bin/sfgraph eval "$work/test" -o "$work/report" --quiet --estimates true_f0="$work/estimates/true_f0" \
  --estimates multif0="$work/estimates/multif0" --estimates crepe="$work/estimates/crepe"
