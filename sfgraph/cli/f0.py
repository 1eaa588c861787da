"""F0 commands: ``f0`` (F0 files for every voice, in the dataset layout), ``train-f0`` and ``eval-f0``.

    sfgraph f0 stems/ -o f0/                        CREPE on each stems/<voice>.wav
    sfgraph f0 close_mics.wav -o f0/ --voices soprano,alto,tenor,bass
    sfgraph f0 mix.wav -o f0/ --method score --score choir.musicxml --align
    sfgraph f0 mix.wav -o f0/ --method multif0      every voice from the mixture alone
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfgraph.cli.arguments import add_command
from sfgraph.cli.errors import CliError
from sfgraph.f0 import MULTIF0_MODEL, UNISON_LEAP_CENTS

METHODS = ("crepe", "score", "multif0")


def f0_from_audio(args):
    """``(voices, f0 (voices, frames) Hz, the mono recording (samples,))`` for the chosen method."""
    from sfgraph.grid import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE, frame_times
    from sfgraph.f0.recording import read_audio, read_voices

    voices = [v.strip() for v in args.voices.split(",") if v.strip()] if args.voices else None
    if args.method == "crepe":
        from sfgraph.f0.crepe import TrackerOptions, track_f0

        names, audio = read_voices(Path(args.audio), voices)
        options = TrackerOptions(capacity=args.model, decoder=args.decoder, threshold=args.threshold,
                                 device=args.device, threads=args.threads)
        return names, track_f0(audio, options).f0_hz, audio.sum(axis=0)
    if args.method == "multif0":
        from sfgraph.f0.multif0 import MultiF0Options, estimate_f0, estimate_f0_in_sung_ranges, parse_ranges
        from sfgraph.f0.unison import check_leap_cents
        from sfgraph.resources import resolve_path

        check_leap_cents(args.unison_leap_cents, "--unison-leap-cents")  # before the audio is read

        mixture = read_audio(Path(args.audio)).mean(axis=0)
        options = MultiF0Options(model=resolve_path(args.multif0_model), voices=tuple(voices or DEFAULT_VOICES),
                                 ranges=parse_ranges(args.ranges) if args.ranges else None,
                                 mode=args.multif0_mode, live_lookahead=args.live_lookahead, threads=args.threads,
                                 unison_leap_cents=args.unison_leap_cents, basic_pitch=args.basic_pitch)
        if options.mode == "live":  # it cannot hear the whole recording first
            return options.voices, estimate_f0(mixture, options), mixture
        options, f0 = estimate_f0_in_sung_ranges(mixture, options)
        report_ranges(options, given=bool(args.ranges))
        return options.voices, f0, mixture
    from sfgraph.f0.align import align_score
    from sfgraph.f0.score import read_score

    if not args.score:
        raise CliError("--method score needs --score FILE (a MIDI file or a MusicXML score)")
    recording = read_audio(Path(args.audio)).mean(axis=0)
    score = read_score(Path(args.score), voices).placed(args.offset, args.tempo_scale)
    if args.align:
        score = align_score(score, recording, SAMPLE_RATE)
    return score.voices, score.f0_at(frame_times(recording.size, SAMPLE_RATE, HOP_LENGTH)), recording


def report_ranges(options, given: bool) -> None:
    """Print the voices' ranges the multi-F0 tracker uses (``given`` on the command line, as the
    recording sings them, or the defaults by voice name), in the form ``--ranges`` reads."""
    from sfgraph.f0.multif0 import format_ranges

    notes = format_ranges(options.voice_ranges())
    source = "given" if given else "as sung" if options.ranges is not None else "by voice name"
    print(f"voice ranges ({source}): " + ", ".join(f"{voice} {span}" for voice, span in zip(options.voices, notes))
          + f" (--ranges {','.join(notes)})")


def run_f0(args: argparse.Namespace) -> int:
    import numpy as np

    from sfgraph.data.layout import write_f0_csv
    from sfgraph.grid import HOP_LENGTH, SAMPLE_RATE, frame_times

    started = time.perf_counter()
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg"):
        raise CliError(f"--plot {args.plot}: write a .png or .svg file")
    try:
        voices, f0, recording = f0_from_audio(args)
    except ValueError as exc:  # unreadable audio, voices that do not fit, a bad score or multi-F0 model
        raise CliError(str(exc)) from None
    samples = recording.size
    times = frame_times(samples, SAMPLE_RATE, HOP_LENGTH)
    output = Path(args.output)
    for name, track in zip(voices, f0):
        write_f0_csv(output / f"{name}.csv", times, track)
    seconds = time.perf_counter() - started
    voiced = ", ".join(f"{name} {np.mean(track > 0):.0%}" for name, track in zip(voices, f0))
    print(f"wrote {len(voices)} F0 files of {times.size} frames ({samples / SAMPLE_RATE:.1f} s) to {output} "
          f"in {seconds:.1f} s; voiced: {voiced}")
    if args.plot:
        from sfgraph.f0.plot import plot_f0

        plot_f0(Path(args.plot), recording, f0, voices, SAMPLE_RATE, HOP_LENGTH)
        print(f"wrote {args.plot}")
    return 0


def run_train_f0(args: argparse.Namespace) -> int:
    from sfgraph.data.layout import load_dataset
    from sfgraph.f0.multif0_train import SalienceTrainConfig, train

    config = SalienceTrainConfig(max_steps=args.steps, max_minutes=args.max_minutes, batch_size=args.batch_size,
                                 learning_rate=args.lr, eval_every=args.eval_every, seed=args.seed,
                                 threads=args.threads)
    try:
        summary = train([load_dataset(Path(d), use_stems=False) for d in args.datasets], Path(args.output), config,
                        progress=not args.quiet, init=args.init)
    except ValueError as exc:  # datasets without the true F0 it needs, no validation step, a bad --init
        raise CliError(str(exc)) from None
    print(f"trained {summary['steps']} steps in {summary['minutes']:.1f} min; best validation BCE "
          f"{summary['validation_bce']:.4f} at step {summary['best_step']}; model in {args.output}")
    return 0


def run_eval_f0(args: argparse.Namespace) -> int:
    import json

    from sfgraph.evaluation.f0_scoring import evaluate_f0, format_report
    from sfgraph.evaluation.scoring import parse_estimates
    from sfgraph.atomic import write_bytes

    try:
        results = evaluate_f0(Path(args.dataset), parse_estimates(args.estimates))
    except ValueError as exc:  # an --estimates option that names no folder
        raise CliError(str(exc)) from None
    print(format_report(results))
    if args.output:
        write_bytes(Path(args.output), json.dumps(results, indent=2).encode())
        print(f"wrote {args.output}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "f0", run_f0, help="F0 files (<voice>.csv) for every voice: CREPE per voice channel, "
                                                 "from a score, or multi-F0 from the mixture")
    p.add_argument("audio", help="crepe: a folder of <voice>.wav or one file with a channel per voice; "
                                 "score: the recording (its length sets the frames; --align aligns to it); "
                                 "multif0: the mixture (channels are averaged)")
    p.add_argument("-o", "--output", required=True, help="folder for <voice>.csv (time_s,f0_hz; 62.5 frames/s)")
    p.add_argument("--plot", metavar="F0.png", help="also draw the F0 tracks over the recording's spectrogram, one "
                                                   "colour per voice (.png or .svg), to check them")
    p.add_argument("--method", choices=METHODS, default="crepe", help="crepe (default), score or multif0")
    p.add_argument("--score", help="MIDI file or MusicXML score, one part or track per voice (--method score)")
    p.add_argument("--align", action="store_true", help="align the score to the recording (DTW on chroma)")
    p.add_argument("--voices", help="comma-separated voice names: crepe, one per channel or the files to "
                                    "use; score, part names to keep or one name per part; multif0, "
                                    "the voices high to low (default soprano,alto,tenor,bass)")
    p.add_argument("--offset", type=float, default=0.0, help="score: when the score's time 0 sounds, s")
    p.add_argument("--tempo-scale", type=float, default=1.0, help="score: played this many times as fast")
    p.add_argument("--model", choices=("tiny", "full"), default="tiny", help="crepe: network capacity")
    p.add_argument("--decoder", choices=("viterbi", "weighted_argmax", "argmax"), default="viterbi",
                   help="crepe: pitch decoder")
    p.add_argument("--threshold", type=float, default=0.3, help="crepe: confidence below which a frame is unvoiced")
    p.add_argument("--device", default="auto", help="crepe: auto (CUDA when available), cpu, cuda")
    p.add_argument("--threads", type=int, default=1, help="crepe, multif0: CPU threads for the network (default 1)")
    p.add_argument("--multif0-model", default=MULTIF0_MODEL,
                   help="multif0: salience model folder (from 'sfgraph train-f0'; default the bundled one)")
    p.add_argument("--multif0-mode", choices=("offline", "live"), default="offline",
                   help="multif0: offline (accurate, 2.15 s look-ahead with basic-pitch, 0.45 s without) or live "
                        "(--live-lookahead × 16 ms, as a live graph runs it)")
    p.add_argument("--live-lookahead", type=int, default=2, choices=range(3), metavar="FRAMES",
                   help="multif0 live mode: frames of 16 ms it looks ahead, 0-2 (f0_multi's live_lookahead; "
                        "graphs/separate_live_mic.yaml uses 1)")
    p.add_argument("--ranges", help="multif0: comma-separated LOW-HIGH note ranges, one per voice (e.g. "
                                    "C4-A5,F3-D5,C3-A4,E2-E4; default offline: the ranges the recording sings where every "
                                    "voice sounds, from a first pass of the tracker, else from the voice names)")
    p.add_argument("--unison-leap-cents", type=float, default=UNISON_LEAP_CENTS, metavar="CENTS",
                   help="multif0: a voice that leaps at least this far onto another's pitch reads silent while "
                        "they share it (a voice the tracker lost, not a sung unison); 0 keeps every unison "
                        f"(default {UNISON_LEAP_CENTS:g})")
    p.add_argument("--basic-pitch", type=float, metavar="WEIGHT",
                   help="multif0 offline: weight of basic-pitch's salience (trained on real recordings) beside "
                        "the network's, 0-1 (default 0.4; 0: the network alone; live mode: 0)")

    p = add_command(commands, "train-f0", run_train_f0,
                    help="train the multi-F0 salience network on datasets with true F0 (supervised; e.g. from "
                         "'sfgraph data bach')")
    p.add_argument("datasets", nargs="+", help="dataset folders (mix.wav and f0/<voice>.csv per item)")
    p.add_argument("-o", "--output", required=True, help="model folder to write (multif0.json, weights.pt)")
    p.add_argument("--init", metavar="MODEL", help="start from this multi-F0 model's weights (fine-tuning, e.g. "
                                                   f"{MULTIF0_MODEL}) instead of random ones")
    p.add_argument("--steps", type=int, default=2400, help="training steps (the cosine schedule's length)")
    p.add_argument("--max-minutes", type=float, default=30.0, help="stop after this long, minutes")
    p.add_argument("--eval-every", type=int, default=200, help="steps between validations (best weights kept)")
    p.add_argument("--batch-size", type=int, default=16, help="crops of 64 frames per step")
    p.add_argument("--lr", type=float, default=2e-3, help="initial learning rate (cosine decay to 1/20)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the cores idle, checked every 10 steps; see sfgraph.threads)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = add_command(commands, "eval-f0", run_eval_f0,
                    help="score estimated F0s against a dataset's true F0 (mir_eval multi-pitch and per-voice metrics)")
    p.add_argument("dataset", help="dataset folder with the true f0/<voice>.csv of every item")
    p.add_argument("--estimates", action="append", required=True, metavar="NAME=ROOT",
                   help="a method's estimates: ROOT/<item>/<voice>.csv (repeatable)")
    p.add_argument("-o", "--output", help="also write the scores as JSON to this file")
