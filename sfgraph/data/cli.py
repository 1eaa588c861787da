"""Command-line commands of ``sfgraph.data``: ``data {bach,convert-csd,check}``, ``eval`` and ``baseline``.

``sfgraph/cli.py`` calls ``add_commands(subparsers)``; every command sets
``func(args) -> int``. Expected bad input (an invalid dataset, a missing
fluidsynth ...) is printed as a plain message naming the files concerned and
returns exit status 2, never a traceback. ``python -m sfgraph.data.cli``
runs these commands alone (as the tests and the fixture recipe do).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sfgraph.data.layout import DatasetError

EXIT_USER_ERROR = 2


def _reports_user_errors(
    command: str,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Print expected errors of ``command`` as ``sfgraph <command>: error: ...`` and return 2.

    Expected errors are invalid data (``DatasetError``), a generator that
    cannot run (``GeneratorError``), a model folder that cannot be loaded
    (``ModelError``) and files that cannot be read or written (``OSError``);
    anything else is a bug and keeps its traceback.
    """

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            from sfgraph.data.bach import GeneratorError
            from sfgraph.model.errors import ModelError

            try:
                return run(args)
            except (DatasetError, GeneratorError, ModelError, OSError) as error:
                print(f"sfgraph {command}: error: {error}", file=sys.stderr)
                return EXIT_USER_ERROR

        return wrapper

    return decorate


@_reports_user_errors("data bach")
def _run_bach(args: argparse.Namespace) -> int:
    from sfgraph.data.bach import BachOptions, find_soundfonts, generate_bach, resolve_program

    options = BachOptions(
        count=args.count,
        seconds=args.seconds,
        soundfonts=find_soundfonts(args.soundfont),  # searched once, so the summary can name them
        programs=tuple(resolve_program(program.strip()) for program in args.program.split(",")),
        seed=args.seed,
        tempo_bpm=args.tempo,
        tempo_jitter=args.tempo_jitter,
        transpose=args.transpose,
        vibrato_cents=args.vibrato_cents,
        vibrato_rate_hz=args.vibrato_rate,
        deviation_cents=args.deviation_cents,
        level_db=args.level_db,
        fermata_stretch=args.fermata_stretch,
        per_chorale=args.per_chorale,
        bit_depth=args.bit_depth,
        reverb=args.reverb,
        breath_db=args.breath_db,
        workers=args.workers,
    )
    started = time.perf_counter()
    names = generate_bach(args.outdir, options, force=args.force, progress=not args.quiet)
    print(
        f"wrote {len(names)} items of {args.seconds:g} s to {args.outdir} in {time.perf_counter() - started:.1f} s "
        f"(GM program {', '.join(map(str, options.programs))} of {', '.join(map(str, options.soundfonts))})"
    )
    return 0


@_reports_user_errors("data convert-csd")
def _run_convert_csd(args: argparse.Namespace) -> int:
    from sfgraph.data.csd import convert_csd

    names = convert_csd(
        args.csd_dir,
        args.outdir,
        combinations=args.combinations,
        sample_rate=args.sample_rate,
        force=args.force,
        progress=not args.quiet,
    )
    print(f"wrote {len(names)} items to {args.outdir}")
    return 0


@_reports_user_errors("data check")
def _run_check(args: argparse.Namespace) -> int:
    from sfgraph.data.layout import load_dataset, load_training_dataset

    if args.any_rate:
        dataset = load_dataset(args.dataset, require_stems=args.require_stems)
    else:
        dataset = load_training_dataset(
            args.dataset, args.validation_items, require_stems=args.require_stems, use_stems=True
        )
    seconds = sum(item.duration_s for item in dataset)
    with_stems = sum(item.has_stems for item in dataset)
    rates = sorted({item.sample_rate for item in dataset})
    print(
        f"{args.dataset}: {len(dataset)} valid items, {seconds:.1f} s in all, voices {', '.join(dataset.voices)}, "
        f"sample rate {', '.join(map(str, rates))} Hz, {with_stems} with stems"
        + ("" if args.any_rate else "; ready for 'sfgraph train'")
    )
    return 0


@_reports_user_errors("eval")
def _run_eval(args: argparse.Namespace) -> int:
    from sfgraph.data.evaluate import evaluate, format_tables, parse_estimates, summarize, write_reports
    from sfgraph.data.layout import load_dataset

    try:
        methods = parse_estimates(args.estimates)
    except ValueError as error:
        raise DatasetError([str(error)], context="the --estimates options") from None
    dataset = load_dataset(args.dataset, require_stems=True)
    rows = evaluate(dataset, methods, segment_seconds=args.segment, silence_db=args.silence_db, progress=not args.quiet)
    summary = summarize(rows)
    print(format_tables(summary))
    paths = write_reports(rows, summary, args.output)
    print(f"\nwrote {', '.join(str(path) for path in paths)}")
    return 0


@_reports_user_errors("baseline")
def _run_baseline(args: argparse.Namespace) -> int:
    from sfgraph.data.baselines import separate_dataset
    from sfgraph.data.layout import load_dataset

    model = None
    if args.method == "fitted":
        from sfgraph.model.checkpoint import load_model
        from sfgraph.resources import resolve_path

        model = load_model(resolve_path(args.model))
        dataset = load_dataset(args.dataset, voices=model.config.voices, require_stems=True,
                               sample_rate=model.config.voice.sample_rate)
    else:
        dataset = load_dataset(args.dataset, require_stems=args.method == "oracle")
    power = {"magnitude": 1.0, "power": 2.0}[args.mask]
    separate_dataset(args.method, dataset, args.output, power=power, n_iterations=args.iterations, model=model,
                     fit_steps=args.steps, progress=not args.quiet)
    print(f"wrote {args.method} estimates of {len(dataset)} items to {args.output}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None and False."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def _add_bach(data_commands: argparse._SubParsersAction) -> None:
    from sfgraph.data.bach import BachOptions, default_workers

    defaults = BachOptions()
    parser = data_commands.add_parser(
        "bach",
        help="render four-part Bach chorales into a dataset with stems and F0",
        description=(
            "Render the four-part (Soprano, Alto, Tenor, Bass) chorales of music21's Bach corpus with fluidsynth "
            "and a General MIDI soundfont into OUTDIR: one item per SECONDS of music, each with the four stems, "
            "their exact sum as mix.wav (16 kHz mono) and the ground-truth F0 of every voice (62.5 frames/s), "
            "pitch bends included. Deterministic for a given --seed. Needs the fluidsynth binary and a GM "
            "soundfont (Debian: fluidsynth, fluid-soundfont-gm or timgm6mb-soundfont)."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("outdir", type=Path, help="output dataset folder (must be empty unless --force)")
    parser.add_argument("--count", type=_positive_int, default=defaults.count, help="number of items")
    parser.add_argument("--seconds", type=_positive_float, default=defaults.seconds, help="length of every item, s")
    parser.add_argument(
        "--soundfont",
        default=None,
        help="SF2 file, several separated by commas, or 'all' (every installed GM soundfont) (default: the first "
        "of FluidR3_GM.sf2, TimGM6mb.sf2, default-GM.sf2 in /usr/share/sounds/sf2); with several soundfonts or "
        "programs, each voice of each chorale draws its own patch",
    )
    parser.add_argument(
        "--program",
        default="choir",
        help="GM program, 1-based, or a name: 'choir' = 53 Choir Aahs (ensemble), 'solo' = 54 Voice Oohs (one voice), "
        "'synth' = 55 Synth Voice; several separated by commas",
    )
    parser.add_argument(
        "--reverb",
        type=float,
        default=defaults.reverb,
        help="room reverb: each chorale's wet level is drawn up to this (0..1; 0 = dry)",
    )
    parser.add_argument(
        "--breath-db",
        type=float,
        default=defaults.breath_db,
        help="breath noise following each voice, drawn up to this level below it, dB (e.g. -20; default none)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="random seed (chorale order and every performance choice)"
    )
    parser.add_argument(
        "--tempo", type=_positive_float, default=defaults.tempo_bpm, help="tempo, quarter notes per minute"
    )
    parser.add_argument(
        "--tempo-jitter",
        type=float,
        default=defaults.tempo_jitter,
        help="each chorale's tempo varies by up to this fraction",
    )
    parser.add_argument(
        "--transpose",
        type=int,
        default=defaults.transpose,
        help="each chorale is transposed by a random whole number of semitones up to this",
    )
    parser.add_argument(
        "--vibrato-cents", type=float, default=defaults.vibrato_cents, help="vibrato depth (peak), cents; 0 = none"
    )
    parser.add_argument(
        "--vibrato-rate", type=_positive_float, default=defaults.vibrato_rate_hz, help="vibrato rate, Hz"
    )
    parser.add_argument(
        "--deviation-cents",
        type=float,
        default=defaults.deviation_cents,
        help="per-note intonation error (std) and slow drift (half that), cents",
    )
    parser.add_argument(
        "--level-db", type=float, default=defaults.level_db, help="per-voice level varies per item by up to this, dB"
    )
    parser.add_argument(
        "--fermata-stretch",
        type=_positive_float,
        default=defaults.fermata_stretch,
        help="notes under a fermata last this many times longer",
    )
    parser.add_argument(
        "--per-chorale",
        type=int,
        default=defaults.per_chorale,
        help="at most this many items from one chorale (0 = no limit)",
    )
    parser.add_argument(
        "--bit-depth",
        type=int,
        choices=(16, 32),
        default=defaults.bit_depth,
        help="WAV sample format: 32 = float, 16 = PCM (sums stay exact)",
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=default_workers(), help="fluidsynth processes run at once"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty OUTDIR (same-named items are overwritten)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_bach)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data``, ``eval`` and ``baseline`` commands to an argparse subparsers object."""
    from sfgraph.data.baselines import BASELINES, FIT_STEPS, NMF_ITERATIONS
    from sfgraph.data.csd import COMBINATIONS
    from sfgraph.data.evaluate import DEFAULT_SILENCE_DB
    from sfgraph.data.layout import SAMPLE_RATE
    from sfgraph.model.config import TrainConfig

    data = subparsers.add_parser(
        "data",
        help="make, convert and check datasets",
        description=(
            "Datasets in the sfgraph layout: ITEM/mix.wav, ITEM/f0/<voice>.csv (time_s,f0_hz), "
            "ITEM/stems/<voice>.wav, ITEM/meta.json."
        ),
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="{bach,convert-csd,check}", required=True)
    _add_bach(data_commands)

    convert = data_commands.add_parser(
        "convert-csd",
        help="convert the Choral Singing Dataset into the sfgraph layout",
        description=(
            "Convert the Choral Singing Dataset (files CSD_<piece>_<voice>_<singer>.wav with F0 in .f0 or .csv "
            "of the same name, "
            "searched recursively in CSD_DIR) into items of one singer per voice: stems resampled to --sample-rate, "
            "mix = their sum, F0 resampled to 256-sample frames."
        ),
        formatter_class=_HelpFormatter,
    )
    convert.add_argument("csd_dir", type=Path, help="folder of the unpacked Choral Singing Dataset")
    convert.add_argument("outdir", type=Path, help="output dataset folder (must be empty unless --force)")
    convert.add_argument(
        "--combinations",
        choices=COMBINATIONS,
        default="matched",
        help="matched: singer n of every voice (4 items per piece); all: every combination (256 per piece)",
    )
    convert.add_argument("--sample-rate", type=_positive_int, default=SAMPLE_RATE, help="output sample rate, Hz")
    convert.add_argument("--force", action="store_true", help="write into a non-empty OUTDIR")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(func=_run_convert_csd)

    check = data_commands.add_parser(
        "check",
        help="validate a dataset and list every problem",
        description=(
            "Validate every item of DATASET by the rules 'sfgraph train' applies (16 kHz audio, F0 for every voice "
            "in every item, more items than those held out); exit status 2 and a list of all problems if any."
        ),
    )
    check.add_argument("dataset", type=Path, help="dataset folder")
    check.add_argument("--require-stems", action="store_true", help="every item must have ground-truth stems")
    check.add_argument(
        "--validation-items",
        type=_positive_int,
        default=TrainConfig.validation_items,
        help="items training holds out (as 'sfgraph train')",
    )
    check.add_argument(
        "--any-rate",
        action="store_true",
        help="accept any sample rate and item count (a dataset for 'sfgraph eval', not for training)",
    )
    check.set_defaults(func=_run_check)

    evaluation = subparsers.add_parser(
        "eval",
        help="score separated voices against the stems (SI-SDR, SDR)",
        description=(
            "Score estimates DIR/<item>/<voice>.wav against DATASET's stems with SI-SDR and SDR (fast_bss_eval), "
            "per voice and per item, print mean / median tables and write scores.csv, summary.csv, summary.json "
            "and one box plot per method."
        ),
        formatter_class=_HelpFormatter,
    )
    evaluation.add_argument("dataset", type=Path, help="dataset folder with stems")
    evaluation.add_argument(
        "--estimates",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="estimates of one method; repeat to compare methods (NAME defaults to the folder name)",
    )
    evaluation.add_argument(
        "-o", "--output", type=Path, default=Path("eval-results"), help="folder for the CSV, JSON and PNG reports"
    )
    evaluation.add_argument(
        "--segment",
        type=_positive_float,
        default=None,
        help="score segments of this many seconds (e.g. 1) and take each voice's median",
    )
    evaluation.add_argument(
        "--silence-db",
        type=float,
        default=DEFAULT_SILENCE_DB,
        help="with --segment: skip segments whose reference is this far below the voice's level, dB",
    )
    evaluation.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(func=_run_eval)

    baseline = subparsers.add_parser(
        "baseline",
        help="run a reference separator on a dataset (oracle masks, F0-informed NMF, fitted voices, mixture)",
        description=(
            "Write estimates OUTPUT/<item>/<voice>.wav for every item of DATASET, in the layout 'sfgraph eval' reads. "
            "oracle: ratio masks from the true stems (needs stems); "
            "nmf: harmonic-comb NMF from the mixture and the F0 files; "
            "fitted: masks from the model's synthesizer with every frame's parameters fitted to the true stems "
            "(needs stems; the ceiling of the voice model, about 1 s per step for 20 s of four voices); "
            "mixture: the mixture as every voice (the floor). STFT: Hann 2048, hop 256."
        ),
        formatter_class=_HelpFormatter,
    )
    baseline.add_argument("method", choices=BASELINES, help="which baseline")
    baseline.add_argument("dataset", type=Path, help="dataset folder")
    baseline.add_argument("-o", "--output", type=Path, required=True, help="estimates folder")
    baseline.add_argument(
        "--mask",
        choices=("magnitude", "power"),
        default="magnitude",
        help="oracle, nmf, fitted: magnitude-ratio or power-ratio masks",
    )
    baseline.add_argument(
        "--iterations", type=_positive_int, default=NMF_ITERATIONS, help="nmf: multiplicative-update iterations"
    )
    baseline.add_argument(
        "--model", default="sfgraph:models/default", help="fitted: the trained model whose estimates the fit starts from"
    )
    baseline.add_argument("--steps", type=_positive_int, default=FIT_STEPS, help="fitted: Adam steps per item")
    baseline.add_argument("--quiet", action="store_true", help="no progress bar")
    baseline.set_defaults(func=_run_baseline)


def main(argv: list[str] | None = None) -> int:
    """Run one of these commands from ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="sfgraph", description="sfgraph dataset, evaluation and baseline commands")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
