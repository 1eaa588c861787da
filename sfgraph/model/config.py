"""Training settings (no torch import: the command line builds its flags from them quickly)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sfgraph.model.errors import ModelError


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
    # Section voice models: a hinge prior on the spread, added to the training loss as
    # weight * mean over voiced frames of relu(spread_cents - spread_prior_cents) (weight 0:
    # off). None: the --init model's (its model.json's spread_prior), or a resumed run's own,
    # else SPREAD_PRIOR_OFF's.
    spread_prior_weight: float | None = None
    spread_prior_cents: float | None = None

    # Network settings that a run started with --init takes from that model unless given.
    FROM_INIT = ("hidden", "causal_frames")
    # The spread prior's values when neither the flags nor the --init model give them.
    SPREAD_PRIOR_OFF = {"spread_prior_weight": 0.0, "spread_prior_cents": 10.0}

    def check(self) -> None:
        """Refuse settings that cannot train (each named by its flag)."""
        positive = ("segment_seconds", "batch_size", "steps", "learning_rate", "final_learning_rate",
                    "eval_every", "patience", "hidden")
        wrong = [f"--{name.replace('_', '-')} must be positive, not {getattr(self, name)}"
                 for name in positive if not getattr(self, name) > 0]
        if self.max_minutes is not None and not self.max_minutes > 0:
            wrong.append(f"--max-minutes must be positive, not {self.max_minutes} (leave it out for no time limit)")
        if self.spread_prior_weight is not None and not 0 <= self.spread_prior_weight < math.inf:
            wrong.append(f"--spread-prior-weight must be 0 (off) or positive, not {self.spread_prior_weight}")
        if self.spread_prior_cents is not None and not 0 < self.spread_prior_cents < math.inf:
            wrong.append(f"--spread-prior-cents must be positive, not {self.spread_prior_cents}")
        if self.validation_items < 1:
            wrong.append(f"--validation-items must be at least 1, not {self.validation_items}")
        if wrong:
            raise ModelError("; ".join(wrong))


def resolve_network_settings(settings: dict, init_config) -> dict:
    """``settings`` with the ``FROM_INIT`` ones that were not given (None) filled in: from
    ``init_config`` (the --init model's NetworkConfig) when there is one, else the defaults."""
    defaults = TrainConfig()
    return {**settings, **{name: getattr(init_config if init_config is not None else defaults, name)
                           for name in TrainConfig.FROM_INIT if settings[name] is None}}
