"""Model folders: weights, configuration and voice names, written atomically.

A model folder holds ``model.json`` (format version, network config, voices,
training config, and optionally the separation settings the model is meant to be used
with, ``separation``, and the spread prior further training of it keeps,
``spread_prior``) and ``weights.pt`` (the best weights); training adds
``checkpoint.pt`` (everything needed to resume), ``log.csv`` and ``loss_curve.png``.
"""
from __future__ import annotations

import collections
import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sfgraph.atomic import write_bytes, write_torch
from sfgraph.model.errors import ModelError
from sfgraph.model.network_config import NetworkConfig

if TYPE_CHECKING:  # torch is imported by the functions that need it: separating needs none
    import torch

    from sfgraph.model.network import ParamNet

FORMAT_VERSION = 1

# model.json's "separation": settings a model is meant to separate with, which
# `sfgraph separate` uses unless told otherwise, with their ranges: the mask's section
# width (cents, the mask node's section_cents) and the scale of the synthesized voices'
# noise part (sf_synth's noise)
SEPARATION_SETTINGS = {"section_cents": (0.0, 100.0), "synth_noise": (0.0, 1.0)}


def save_model(folder: Path, network: ParamNet, training: dict | None = None,
               separation: dict | None = None, spread_prior: dict | None = None) -> None:
    folder = Path(folder)
    write_torch(folder / "weights.pt", network.state_dict())
    description = {"format_version": FORMAT_VERSION, "network": network.config.to_dict(),
                   "voices": list(network.config.voices), "training": training or {}}
    if separation:
        description["separation"] = dict(separation)
    if spread_prior:
        description["spread_prior"] = dict(spread_prior)
    write_bytes(folder / "model.json", json.dumps(description, indent=2).encode())


def separation_settings(folder: Path, description: dict | None = None) -> dict[str, float]:
    """The separation settings a model folder's model.json recommends (``SEPARATION_SETTINGS``;
    none: {}), checked: ModelError names the file and the setting for an unknown name or a
    bad value. ``description``: model.json as ``read_model_config`` gave it (None: read it)."""
    description = read_model_config(folder)[1] if description is None else description
    settings = description.get("separation", {})
    path = Path(folder) / "model.json"
    if not isinstance(settings, dict):
        raise ModelError(f"{path}: 'separation' must map setting names to numbers, got {settings!r}")
    for name, value in settings.items():
        if name not in SEPARATION_SETTINGS:
            raise ModelError(f"{path}: unknown separation setting {name!r} (known: {', '.join(SEPARATION_SETTINGS)})")
        low, high = SEPARATION_SETTINGS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ModelError(f"{path}: separation setting {name} = {value!r}: give a number from {low:g} to {high:g}")
    return {name: float(value) for name, value in settings.items()}


def is_spread_prior(prior) -> bool:
    """Whether ``prior`` is a spread prior, ``{"weight": W >= 0, "cents": C > 0}`` of finite
    numbers (weight 0: off)."""
    return (isinstance(prior, dict) and set(prior) == {"weight", "cents"}
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in prior.values())
            and prior["weight"] >= 0 and prior["cents"] > 0)


def spread_prior_setting(folder: Path) -> dict[str, float] | None:
    """The spread prior a section model's model.json carries (``{"weight", "cents"}``, the
    hinge of ``sfgraph.model.train.spread_prior``, which ``train --init`` and ``separate
    --adapt`` keep training it with), or None (none, or weight 0: off); ModelError names
    the file for a bad one."""
    config, description = read_model_config(folder)
    prior = description.get("spread_prior")
    if prior is None:
        return None
    path = Path(folder) / "model.json"
    if not is_spread_prior(prior):
        raise ModelError(f"{path}: 'spread_prior' must be {{\"weight\": W >= 0, \"cents\": C > 0}}, got {prior!r}")
    if not config.voice.is_section:
        raise ModelError(f"{path}: 'spread_prior' is for section voice models; this one is a solo model (no spread)")
    return {"weight": float(prior["weight"]), "cents": float(prior["cents"])} if prior["weight"] > 0 else None


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
    import torch

    from sfgraph.model.network import ParamNet

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


# torch.save's storage types, by the names its pickle gives them
_STORAGE_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_) -> np.ndarray:
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], size, tuple(item * s for s in stride)).copy()


class _StateDictUnpickler(pickle.Unpickler):
    """Reads the pickle of a ``torch.save``d state dict as numpy arrays: only an ordered dict
    of tensors is allowed, as ``torch.load(weights_only=True)`` allows only plain data."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(archive.open(f"{prefix}data.pkl"))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state dict of tensors")

    def persistent_load(self, record):
        _, dtype, key, _location, count = record  # ("storage", type, key, device, element count)
        data = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"), count=count)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """A ``weights.pt`` (a ``torch.save``d state dict) as float32 numpy arrays, without torch;
    raises ModelError naming the file when it is missing, damaged or holds anything else."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: missing")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError("not a torch.save archive")
            state = _StateDictUnpickler(archive, pickles[0][:-len("data.pkl")]).load()
        return {name: np.asarray(values, np.float32) for name, values in state.items()}
    except Exception as exc:  # zipfile, pickle and numpy raise several types for damaged files
        raise ModelError(f"{path}: corrupted or truncated weights ({type(exc).__name__})") from None
