"""The ``sfgraph f0`` command: F0 files for every voice, in the dataset layout.

``sfgraph/cli.py`` calls ``add_commands(subparsers)``, which also adds ``train-f0``
(``sfgraph.f0.multif0_train``) and ``eval-f0`` (``sfgraph.f0.evaluate``). ``python -m sfgraph.f0.cli
f0 ...`` runs the command alone. Bad input (unreadable audio or score, voices that
do not fit) is printed as one message and exits with status 2.

    sfgraph f0 stems/ -o f0/                        CREPE on each stems/<voice>.wav
    sfgraph f0 close_mics.wav -o f0/ --voices soprano,alto,tenor,bass
    sfgraph f0 mix.wav -o f0/ --method score --score choir.musicxml --align
    sfgraph f0 mix.wav -o f0/ --method multif0      every voice from the mixture alone
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sfgraph.data.layout import DEFAULT_VOICES, HOP_LENGTH, SAMPLE_RATE, frame_times, voice_order, write_f0_csv
from sfgraph.f0 import MULTIF0_MODEL

EXIT_USER_ERROR = 2
METHODS = ("crepe", "score", "multif0")


def read_audio(path: Path) -> np.ndarray:
    """(channels, samples) float32 of an audio file, resampled to 16 kHz."""
    from pedalboard.io import AudioFile

    try:
        with AudioFile(str(path)).resampled_to(float(SAMPLE_RATE)) as audio_file:
            return np.asarray(audio_file.read(audio_file.frames), dtype=np.float32)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot read audio file {path}: {exc}") from None


def read_voices(path: Path, voices: list[str] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Voice names and (voices, samples) at 16 kHz from a folder of ``<voice>.wav`` (mono) or one
    audio file with a channel per voice."""
    if path.is_dir():
        found = voice_order([p.stem for p in path.glob("*.wav")])
        names = tuple(voices) if voices else found
        missing = [name for name in names if name not in found]
        if not names or missing:
            raise ValueError(f"{path}: no {', '.join(f'{m}.wav' for m in missing) or '<voice>.wav files'} "
                             f"(found: {', '.join(found) or 'none'})")
        channels = [read_audio(path / f"{name}.wav") for name in names]
        for name, audio in zip(names, channels):
            if audio.shape[0] != 1:
                raise ValueError(f"{path / (name + '.wav')}: expected mono audio, found {audio.shape[0]} channels")
        length = max(audio.shape[1] for audio in channels)
        return names, np.stack([np.pad(audio[0], (0, length - audio.shape[1])) for audio in channels])
    audio = read_audio(path)
    if voices:
        names = tuple(voices)
    elif audio.shape[0] == len(DEFAULT_VOICES):
        names = DEFAULT_VOICES
    else:
        names = tuple(f"voice{i + 1}" for i in range(audio.shape[0]))
    if len(names) != audio.shape[0]:
        raise ValueError(f"{path} has {audio.shape[0]} channel(s) but {len(names)} voices are named "
                         f"({', '.join(names)}): CREPE tracks one voice per channel; for a mixture use "
                         "--method score")
    return names, audio


def f0_from_audio(args) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(voices, f0 (voices, frames) Hz, the mono recording (samples,))`` for the chosen method."""
    voices = [v.strip() for v in args.voices.split(",") if v.strip()] if args.voices else None
    if args.method == "crepe":
        from sfgraph.f0.crepe import TrackerOptions, track_f0

        names, audio = read_voices(Path(args.audio), voices)
        options = TrackerOptions(capacity=args.model, decoder=args.decoder, threshold=args.threshold,
                                 device=args.device, threads=args.threads)
        return names, track_f0(audio, options).f0_hz, audio.sum(axis=0)
    if args.method == "multif0":
        from sfgraph.f0.multif0 import MultiF0Options, estimate_f0, parse_ranges
        from sfgraph.resources import resolve_path

        mixture = read_audio(Path(args.audio)).mean(axis=0)
        options = MultiF0Options(model=resolve_path(args.multif0_model), voices=tuple(voices or DEFAULT_VOICES),
                                 ranges=parse_ranges(args.ranges) if args.ranges else None,
                                 threads=args.threads)
        return options.voices, estimate_f0(mixture, options), mixture
    from sfgraph.f0.align import align_score
    from sfgraph.f0.score import read_score

    if not args.score:
        raise ValueError("--method score needs --score FILE (a MIDI file or a MusicXML score)")
    recording = read_audio(Path(args.audio)).mean(axis=0)
    score = read_score(Path(args.score), voices).placed(args.offset, args.tempo_scale)
    if args.align:
        score = align_score(score, recording, SAMPLE_RATE)
    return score.voices, score.f0_at(frame_times(recording.size, SAMPLE_RATE, HOP_LENGTH)), recording


def run_f0(args: argparse.Namespace) -> int:
    from sfgraph.f0.score import ScoreError

    started = time.perf_counter()
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg"):
        print(f"sfgraph f0: error: --plot {args.plot}: write a .png or .svg file", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        voices, f0, recording = f0_from_audio(args)
    except (ScoreError, ValueError, OSError) as exc:  # multi-F0 model errors are ValueErrors
        print(f"sfgraph f0: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
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
        from .plot import plot_f0

        plot_f0(Path(args.plot), recording, f0, voices, SAMPLE_RATE, HOP_LENGTH)
        print(f"wrote {args.plot}")
    return 0


def run_train_f0(args: argparse.Namespace) -> int:
    from .multif0_train import run_train_f0

    return run_train_f0(args)


def run_eval_f0(args: argparse.Namespace) -> int:
    from .evaluate import run_eval_f0

    return run_eval_f0(args)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("f0", help="F0 files (<voice>.csv) for every voice: CREPE per voice channel, "
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
    p.add_argument("--ranges", help="multif0: comma-separated LOW-HIGH note ranges, one per voice (e.g. "
                                    "C4-A5,F3-D5,C3-A4,E2-E4; default from the voice names)")
    p.set_defaults(func=run_f0)

    p = subparsers.add_parser("train-f0", help="train the multi-F0 salience network on datasets with true F0 "
                                               "(supervised; e.g. from 'sfgraph data bach')")
    p.add_argument("datasets", nargs="+", help="dataset folders (mix.wav and f0/<voice>.csv per item)")
    p.add_argument("-o", "--output", required=True, help="model folder to write (multif0.json, weights.pt)")
    p.add_argument("--steps", type=int, default=2400, help="training steps (the cosine schedule's length)")
    p.add_argument("--max-minutes", type=float, default=30.0, help="stop after this long, minutes")
    p.add_argument("--eval-every", type=int, default=200, help="steps between validations (best weights kept)")
    p.add_argument("--batch-size", type=int, default=16, help="crops of 64 frames per step")
    p.add_argument("--lr", type=float, default=2e-3, help="initial learning rate (cosine decay to 1/20)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_train_f0)

    p = subparsers.add_parser("eval-f0", help="score estimated F0s against a dataset's true F0 (mir_eval "
                                              "multi-pitch and per-voice metrics)")
    p.add_argument("dataset", help="dataset folder with the true f0/<voice>.csv of every item")
    p.add_argument("--estimates", action="append", required=True, metavar="NAME=ROOT",
                   help="a method's estimates: ROOT/<item>/<voice>.csv (repeatable)")
    p.add_argument("-o", "--output", help="also write the scores as JSON to this file")
    p.set_defaults(func=run_eval_f0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfgraph")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
