"""Training settings and their command-line flags (no torch import: the CLI stays quick)."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from .errors import ModelError


@dataclass
class TrainConfig:
    segment_seconds: float = 4.0
    batch_size: int = 8
    steps: int = 2000
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-4   # cosine decay to this by the last step
    eval_every: int = 100               # steps between validation, log line and checkpoint
    patience: int = 8                   # evaluations without improvement before stopping early
    validation_items: int = 1           # items held out (the last ones by name)
    max_minutes: float | None = None    # wall-clock budget: past it, evaluate, save and stop
    hidden: int = 256
    causal_frames: bool = True          # frames from the window ending at their time (see NetworkConfig)
    seed: int = 0

    # Network settings that a run started with --init takes from that model unless given.
    FROM_INIT = ("hidden", "causal_frames")

    def check(self) -> None:
        """Refuse settings that cannot train (each named by its flag)."""
        positive = ("segment_seconds", "batch_size", "steps", "learning_rate", "final_learning_rate",
                    "eval_every", "patience", "hidden")
        wrong = [f"--{name.replace('_', '-')} must be positive, not {getattr(self, name)}"
                 for name in positive if not getattr(self, name) > 0]
        if self.max_minutes is not None and not self.max_minutes > 0:
            wrong.append(f"--max-minutes must be positive, not {self.max_minutes} (leave it out for no time limit)")
        if self.validation_items < 1:
            wrong.append(f"--validation-items must be at least 1, not {self.validation_items}")
        if wrong:
            raise ModelError("; ".join(wrong))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("dataset", help="dataset folder (mix.wav and f0/ per item; stems are never read)")
    parser.add_argument("-o", "--output", required=True, help="model folder to write")
    parser.add_argument("--resume", action="store_true", help="continue from the model folder's last checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="replace the model in a non-empty output folder (its earlier run's files are removed)")
    parser.add_argument("--init", metavar="MODEL",
                        help="start from a trained model's weights (fine-tuning; e.g. sfgraph:models/default): "
                             "its voices must match; its --hidden and causal frames are taken unless given")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 …")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: the cores idle at the start; see sfgraph.threads)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--keep-rank-weights", action="store_true",
                        help="also write each process's final weights (to check distributed runs)")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        from_init = name in TrainConfig.FROM_INIT  # None when not given: see resolve_network_settings
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
                            help=f"default {value}" + (", or the --init model's" if from_init else ""))


def resolve_network_settings(settings: dict, init_config) -> dict:
    """``settings`` with the ``FROM_INIT`` ones that were not given (None) filled in: from
    ``init_config`` (the --init model's NetworkConfig) when there is one, else the defaults."""
    defaults = TrainConfig()
    return {**settings, **{name: getattr(init_config if init_config is not None else defaults, name)
                           for name in TrainConfig.FROM_INIT if settings[name] is None}}
