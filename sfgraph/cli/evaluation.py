"""Scoring and reference separators: ``eval`` and ``baseline``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfgraph.cli.arguments import HelpFormatter, add_command, cents_width, positive_float, positive_int


def run_eval(args: argparse.Namespace) -> int:
    from sfgraph.evaluation.scoring import evaluate, format_tables, parse_estimates, summarize, write_reports
    from sfgraph.data.layout import DatasetError, load_dataset

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


def run_baseline(args: argparse.Namespace) -> int:
    from sfgraph.evaluation.baselines import separate_dataset
    from sfgraph.data.layout import load_dataset

    model = None
    if args.method == "fitted":
        from sfgraph.model.checkpoint import load_model
        from sfgraph.resources import resolve_path

        model = load_model(resolve_path(args.model))
        dataset = load_dataset(args.dataset, voices=model.config.voices, require_stems=True,
                               sample_rate=model.config.voice.sample_rate)
    else:
        dataset = load_dataset(args.dataset, require_stems=args.method in ("oracle", "partials"))
    power = {"magnitude": 1.0, "power": 2.0}[args.mask]
    separate_dataset(args.method, dataset, args.output, power=power, n_iterations=args.iterations, model=model,
                     fit_steps=args.steps, spread_cents=args.spread_cents, progress=not args.quiet)
    print(f"wrote {args.method} estimates of {len(dataset)} items to {args.output}")
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    from sfgraph.evaluation.scoring import DEFAULT_SILENCE_DB

    parser.add_argument("dataset", type=Path, help="dataset folder with stems")
    parser.add_argument(
        "--estimates",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="estimates of one method; repeat to compare methods (NAME defaults to the folder name)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("eval-results"), help="folder for the CSV, JSON and PNG reports"
    )
    parser.add_argument(
        "--segment",
        type=positive_float,
        default=None,
        help="score segments of this many seconds (e.g. 1) and take each voice's median",
    )
    parser.add_argument(
        "--silence-db",
        type=float,
        default=DEFAULT_SILENCE_DB,
        help="with --segment: skip segments whose reference is this far below the voice's level, dB",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _baseline_arguments(parser: argparse.ArgumentParser) -> None:
    from sfgraph.evaluation.baselines import BASELINES, FIT_STEPS, NMF_ITERATIONS, SPREAD_CENTS

    parser.add_argument("method", choices=BASELINES, help="which baseline")
    parser.add_argument("dataset", type=Path, help="dataset folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="estimates folder")
    parser.add_argument(
        "--mask",
        choices=("magnitude", "power"),
        default="magnitude",
        help="oracle, nmf, partials, fitted: magnitude-ratio or power-ratio masks",
    )
    parser.add_argument(
        "--spread-cents", type=cents_width, default=SPREAD_CENTS,
        help="nmf, partials: each partial widened as a section's, by this many cents (standard deviation)",
    )
    parser.add_argument(
        "--iterations", type=positive_int, default=NMF_ITERATIONS, help="nmf: multiplicative-update iterations"
    )
    parser.add_argument(
        "--model", default="sfgraph:models/default", help="fitted: the trained model whose estimates the fit starts from"
    )
    parser.add_argument("--steps", type=positive_int, default=FIT_STEPS, help="fitted: Adam steps per item")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_command(
        commands,
        "eval",
        run_eval,
        _eval_arguments,
        help="score separated voices against the stems (SI-SDR, SDR)",
        description=(
            "Score estimates DIR/<item>/<voice>.wav against DATASET's stems with SI-SDR and SDR (fast_bss_eval), "
            "per voice and per item, print mean / median tables and write scores.csv, summary.csv, summary.json "
            "and one box plot per method."
        ),
        formatter_class=HelpFormatter,
    )
    add_command(
        commands,
        "baseline",
        run_baseline,
        _baseline_arguments,
        help="run a reference separator on a dataset (oracle masks, F0-informed NMF, partials, fitted voices, mixture)",
        description=(
            "Write estimates OUTPUT/<item>/<voice>.wav for every item of DATASET, in the layout 'sfgraph eval' reads. "
            "oracle: ratio masks from the true stems (needs stems); "
            "nmf: harmonic-comb NMF from the mixture and the F0 files; "
            "partials: masks from harmonic combs at the F0s whose every partial's level per frame is read off the "
            "true stems (needs stems; a reference ceiling for voice models that are one harmonic comb per voice); "
            "fitted: masks from the model's synthesizer with every frame's parameters fitted to the true stems "
            "(needs stems; the ceiling of the voice model, about 1 s per step for 20 s of four voices); "
            "mixture: the mixture as every voice (the floor). STFT: Hann 2048, hop 256."
        ),
        formatter_class=HelpFormatter,
    )
