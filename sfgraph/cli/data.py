"""Dataset commands: ``data bach``, ``data convert-csd`` and ``data check``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfgraph.cli.arguments import HelpFormatter, add_command, positive_float, positive_int


def run_bach(args: argparse.Namespace) -> int:
    from sfgraph.data.bach import FESTIVAL, BachOptions, find_soundfonts, generate_bach, resolve_program

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
        section_size=args.section_size,
        section_detune_cents=args.section_detune_cents,
        section_jitter_s=args.section_jitter,
        section_f0=args.section_f0,
        workers=args.workers,
    )
    started = time.perf_counter()
    names = generate_bach(args.outdir, options, force=args.force, progress=not args.quiet,
                          track_f0=_crepe_f0 if FESTIVAL in options.soundfonts else None)
    print(
        f"wrote {len(names)} items of {args.seconds:g} s to {args.outdir} in {time.perf_counter() - started:.1f} s "
        f"(GM program {', '.join(map(str, options.programs))} of {', '.join(map(str, options.soundfonts))})"
    )
    return 0


def _crepe_f0(audio):
    """F0 of one sung voice (16 kHz, (n,)) with CREPE tiny, on the dataset's frame grid."""
    from sfgraph.f0.crepe import TrackerOptions, track_f0

    return track_f0(audio[None], TrackerOptions(capacity="tiny", device="cpu")).f0_hz[0]


def run_convert_csd(args: argparse.Namespace) -> int:
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


def run_check(args: argparse.Namespace) -> int:
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


def _bach_arguments(parser: argparse.ArgumentParser) -> None:
    from sfgraph.data.bach import SECTION_F0, BachOptions, default_workers

    defaults = BachOptions()
    parser.add_argument("outdir", type=Path, help="output dataset folder (must be empty unless --force)")
    parser.add_argument("--count", type=positive_int, default=defaults.count, help="number of items")
    parser.add_argument("--seconds", type=positive_float, default=defaults.seconds, help="length of every item, s")
    parser.add_argument(
        "--soundfont",
        default=None,
        help="SF2 file (a bare name is also looked for in /usr/share/sounds/sf2 and sf3), several separated by commas, 'all' (every installed GM soundfont) or 'festival' "
        "(Festival's diphone voice singing words; its F0 measured with CREPE) (default: the first "
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
        "--section-size",
        type=int,
        default=defaults.section_size,
        help="singers per part: each part's stem is a section of this many singers (own patch draw, detune, "
        "timing, vibrato), its F0 as --section-f0 says; 1 = one singer per part",
    )
    parser.add_argument(
        "--section-detune-cents",
        type=float,
        default=defaults.section_detune_cents,
        help="each singer of a section sings detuned by a constant drawn in +-this, cents",
    )
    parser.add_argument(
        "--section-jitter",
        type=float,
        default=defaults.section_jitter_s,
        help="std of each singer's note onset and end shifts, s",
    )
    parser.add_argument(
        "--section-f0",
        choices=SECTION_F0,
        default=defaults.section_f0,
        help="a section's F0 file: the 'mean' of its singers' F0 (cents) or the 'first' singer's alone, as a "
        "real choir's F0 tracked on one singer per part",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="random seed (chorale order and every performance choice)"
    )
    parser.add_argument(
        "--tempo", type=positive_float, default=defaults.tempo_bpm, help="tempo, quarter notes per minute"
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
        "--vibrato-rate", type=positive_float, default=defaults.vibrato_rate_hz, help="vibrato rate, Hz"
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
        type=positive_float,
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
        "--workers", type=positive_int, default=default_workers(), help="fluidsynth processes run at once"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty OUTDIR (same-named items are overwritten)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _convert_csd_arguments(parser: argparse.ArgumentParser) -> None:
    from sfgraph.data.csd import COMBINATIONS
    from sfgraph.grid import SAMPLE_RATE

    parser.add_argument("csd_dir", type=Path, help="folder of the unpacked Choral Singing Dataset")
    parser.add_argument("outdir", type=Path, help="output dataset folder (must be empty unless --force)")
    parser.add_argument(
        "--combinations",
        choices=COMBINATIONS,
        default="matched",
        help="matched: singer n of every voice (4 items per piece); all: every combination (256 per piece)",
    )
    parser.add_argument("--sample-rate", type=positive_int, default=SAMPLE_RATE, help="output sample rate, Hz")
    parser.add_argument("--force", action="store_true", help="write into a non-empty OUTDIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    from sfgraph.model.config import TrainConfig

    parser.add_argument("dataset", type=Path, help="dataset folder")
    parser.add_argument("--require-stems", action="store_true", help="every item must have ground-truth stems")
    parser.add_argument(
        "--validation-items",
        type=positive_int,
        default=TrainConfig.validation_items,
        help="items training holds out (as 'sfgraph train')",
    )
    parser.add_argument(
        "--any-rate",
        action="store_true",
        help="accept any sample rate and item count (a dataset for 'sfgraph eval', not for training)",
    )


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    data_commands = parser.add_subparsers(dest="data_command", metavar="{bach,convert-csd,check}", required=True)
    add_command(
        data_commands,
        "bach",
        run_bach,
        _bach_arguments,
        help="render four-part Bach chorales into a dataset with stems and F0",
        description=(
            "Render the four-part (Soprano, Alto, Tenor, Bass) chorales of music21's Bach corpus with fluidsynth "
            "and a General MIDI soundfont into OUTDIR: one item per SECONDS of music, each with the four stems, "
            "their exact sum as mix.wav (16 kHz mono) and the ground-truth F0 of every voice (62.5 frames/s), "
            "pitch bends included. Deterministic for a given --seed. Needs the fluidsynth binary and a GM "
            "soundfont (Debian: fluidsynth, fluid-soundfont-gm or timgm6mb-soundfont)."
        ),
        formatter_class=HelpFormatter,
    )
    add_command(
        data_commands,
        "convert-csd",
        run_convert_csd,
        _convert_csd_arguments,
        help="convert the Choral Singing Dataset into the sfgraph layout",
        description=(
            "Convert the Choral Singing Dataset (files CSD_<piece>_<voice>_<singer>.wav with F0 in .f0 or .csv "
            "of the same name, "
            "searched recursively in CSD_DIR) into items of one singer per voice: stems resampled to --sample-rate, "
            "mix = their sum, F0 resampled to 256-sample frames."
        ),
        formatter_class=HelpFormatter,
    )
    add_command(
        data_commands,
        "check",
        run_check,
        _check_arguments,
        help="validate a dataset and list every problem",
        description=(
            "Validate every item of DATASET by the rules 'sfgraph train' applies (16 kHz audio, F0 for every voice "
            "in every item, more items than those held out); exit status 2 and a list of all problems if any."
        ),
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "data",
        arguments=_data_arguments,
        help="make, convert and check datasets",
        description=(
            "Datasets in the sfgraph layout: ITEM/mix.wav, ITEM/f0/<voice>.csv (time_s,f0_hz), "
            "ITEM/stems/<voice>.wav, ITEM/meta.json."
        ),
    )
