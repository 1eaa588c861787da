"""Model folders: weights, configuration and voice names, written atomically.

A model folder holds ``model.json`` (format version, network config, voices,
training config) and ``weights.pt`` (the best weights); training adds
``checkpoint.pt`` (everything needed to resume), ``log.csv`` and ``loss_curve.png``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from sfgraph.atomic import write_bytes, write_torch
from sfgraph.model.errors import ModelError
from sfgraph.model.network import NetworkConfig, ParamNet

FORMAT_VERSION = 1


def save_model(folder: Path, network: ParamNet, training: dict | None = None) -> None:
    folder = Path(folder)
    write_torch(folder / "weights.pt", network.state_dict())
    description = {"format_version": FORMAT_VERSION, "network": network.config.to_dict(),
                   "voices": list(network.config.voices), "training": training or {}}
    write_bytes(folder / "model.json", json.dumps(description, indent=2).encode())


def read_model_config(folder: Path) -> tuple[NetworkConfig, dict]:
    """The network config and the whole description of a model folder."""
    folder = Path(folder)
    description_path = folder / "model.json"
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    if not description_path.exists():
        raise ModelError(f"{folder} is not an sfgraph model folder (no model.json)")
    try:
        description = json.loads(description_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{description_path}: damaged ({exc})") from None
    version = description.get("format_version") if isinstance(description, dict) else None
    if version != FORMAT_VERSION:
        raise ModelError(f"{description_path}: model format version {version!r}; this sfgraph reads version "
                         f"{FORMAT_VERSION} (retrain the model with this version)")
    try:
        return NetworkConfig.from_dict(description["network"]), description
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{description_path}: incomplete network configuration ({exc})") from None


def load_model(folder: Path, device: str | torch.device = "cpu") -> ParamNet:
    """Load a model folder; raises ModelError naming the file for any problem."""
    config, _ = read_model_config(folder)
    weights_path = Path(folder) / "weights.pt"
    if not weights_path.exists():
        raise ModelError(f"{weights_path}: missing")
    try:
        state = torch.load(weights_path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or corrupted files
        raise ModelError(f"{weights_path}: corrupted or truncated weights ({type(exc).__name__})") from None
    network = ParamNet(config).to(device)
    try:
        network.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"{weights_path}: weights do not match model.json ({str(exc).splitlines()[0]})") from None
    network.eval()
    return network
