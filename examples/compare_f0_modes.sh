#!/usr/bin/env bash
# What the multi-F0 tracker's live mode (32 ms of look-ahead, or 16 ms as in
# graphs/separate_live_mic.yaml) costs against its offline mode (2.15 s, with basic-pitch): F0 of every
# item of a dataset from its mixture in each mode, scored with mir_eval (eval-f0), then
# separation with each F0 and with the true F0, scored with SI-SDR (eval). Separating
# from F0 files of the live mode gives what the f0_multi node gives in a live graph (its
# frames do not depend on how audio comes in blocks).
#   bash examples/compare_f0_modes.sh DATASET [WORKDIR]
# e.g. DATASET from: sfgraph data bach DATASET --count 3 --seconds 20 --seed 5
set -euo pipefail
dataset=$1
work=${2:-out/f0_modes/$(basename "$dataset")}
bin=.venv/bin
# The README's tables here were measured with one 2048-sample mask STFT; MASKS= (empty) separates
# with separate's default since 2026-12-03, two resolutions (README, "Two resolutions").
masks=${MASKS---low-n-fft 0}
for item in "$dataset"/*/; do
  name=$(basename "$item")
  for run in offline:offline:2 live:live:2 live16:live:1; do  # name:mode:live look-ahead frames
    IFS=: read -r tag mode frames <<< "$run"
    $bin/sfgraph f0 "$item/mix.wav" -o "$work/f0/$tag/$name" --method multif0 --multif0-mode "$mode" \
      --live-lookahead "$frames" >/dev/null
    $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$work/f0/$tag/$name" -o "$work/estimates/$tag/$name" -q
  done
  $bin/sfgraph separate $masks "$item/mix.wav" --f0 "$item/f0" -o "$work/estimates/true_f0/$name" -q
done
$bin/sfgraph eval-f0 "$dataset" --estimates offline="$work/f0/offline" --estimates live="$work/f0/live" \
  --estimates live16="$work/f0/live16" \
  -o "$work/f0_scores.json" | tee "$work/f0_report.txt"
$bin/sfgraph eval "$dataset" -o "$work/report" --quiet --estimates true_f0="$work/estimates/true_f0" \
  --estimates offline="$work/estimates/offline" --estimates live="$work/estimates/live" \
  --estimates live16="$work/estimates/live16" | tee "$work/sdr_report.txt"
