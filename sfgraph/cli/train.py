"""``sfgraph train`` (also ``python -m sfgraph.train``, one process per rank under
torchrun): a separation model from mixtures and F0s."""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path

from sfgraph.cli.arguments import add_command
from sfgraph.model.config import TrainConfig


def run_train(args) -> int:
    from sfgraph.data.layout import load_training_dataset
    from sfgraph.dsp.voice_config import VOICE_MODELS
    from sfgraph.model.checkpoint import read_model_config
    from sfgraph.model.config import resolve_network_settings
    from sfgraph.model.errors import ModelError
    from sfgraph.model.train import train
    from sfgraph.resources import resolve_path

    init_config = None
    if args.init is not None:
        try:
            init_config = read_model_config(resolve_path(args.init))[0]
        except (FileNotFoundError, ModelError) as exc:
            raise ModelError(f"--init {args.init}: {exc}") from None
    settings = {name: getattr(args, name) for name in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**resolve_network_settings(settings, init_config))
    dataset = load_training_dataset(Path(args.dataset), config.validation_items)
    summary = train(dataset, Path(args.output), config, resume=args.resume, device=args.device,
                    progress=not args.quiet, keep_rank_weights=args.keep_rank_weights, init=args.init,
                    force=args.force, threads=args.threads,
                    voice=None if args.voice_model is None else VOICE_MODELS[args.voice_model])
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {summary['steps']} steps in {summary['seconds'] / 60:.1f} min "
              f"(stopped by {summary['stopped_by']}); best validation loss {summary['best_validation_loss']:.4f}; "
              f"model in {args.output}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "train", run_train,
                         help="train a separation model on mixtures and F0s (no stems needed)")
    defaults = TrainConfig()
    parser.add_argument("dataset", help="dataset folder (mix.wav and f0/ per item; stems are never read)")
    parser.add_argument("-o", "--output", required=True, help="model folder to write")
    parser.add_argument("--resume", action="store_true", help="continue from the model folder's last checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="replace the model in a non-empty output folder (its earlier run's files are removed)")
    parser.add_argument("--init", metavar="MODEL",
                        help="start from a trained model's weights (fine-tuning; e.g. sfgraph:models/default): "
                             "its voices must match; its --hidden and causal frames are taken unless given")
    parser.add_argument("--voice-model", choices=("solo", "section"), default=None,
                        help="solo: one harmonic source per voice (quartets); section: each partial a band of "
                             "detuned copies with a learned spread (choirs). Default: the --init or resumed "
                             "model's, else solo; a section model may start from a solo --init model")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 …")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: the cores idle at the start; see sfgraph.threads)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--keep-rank-weights", action="store_true",
                        help="also write each process's final weights (to check distributed runs)")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        # None when not given: see resolve_network_settings and sfgraph.model.train.resolve_spread_prior
        from_init = name in TrainConfig.FROM_INIT or name in TrainConfig.SPREAD_PRIOR_OFF
        if isinstance(value, bool):  # a switch: --NAME when off by default, --no-NAME when on
            if value:
                parser.add_argument("--no-" + flag[2:], dest=name, action="store_false",
                                    default=None if from_init else value,
                                    help=f"turn off {name.replace('_', ' ')} (on by default"
                                         + (", or as the --init model)" if from_init else ")"))
            else:
                parser.add_argument(flag, action="store_true", help="off by default")
            continue
        kind = float if isinstance(value, float) or value is None else type(value)
        parser.add_argument(flag, type=kind, default=None if from_init else value,
                            help=f"default {TrainConfig.SPREAD_PRIOR_OFF.get(name, value)}"
                                 + (", or the --init model's" if from_init else ""))
