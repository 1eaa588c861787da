from __future__ import annotations

from pathlib import Path

import pytest

from helpers import CUSTOM_NODES


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small model folder with random weights (for graphs that need a param_net), with
    causal frames as the bundled model."""
    import torch

    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    save_model(folder, ParamNet(NetworkConfig(hidden=32, f0_hidden=16, causal_frames=True)))
    return folder


@pytest.fixture(scope="session")
def other_voice_model(tmp_path_factory):
    """A small model folder with random weights whose voice model differs from the default
    one in every setting that the graphs allow (all but the sample rate and hop): a section
    of three copies 8 cents apart, which adds the spread to its controls."""
    import torch

    from sfgraph.dsp.voice_config import VoiceConfig
    from sfgraph.model.checkpoint import save_model
    from sfgraph.model.network import NetworkConfig, ParamNet

    torch.manual_seed(0)
    voice = VoiceConfig(n_harmonics=12, lpc_order=12, n_noise_bands=16, tilt_corner_hz=400.0, min_lsf_gap=1e-2,
                        section_copies=3, section_step_cents=8.0)
    folder = tmp_path_factory.mktemp("other_voice_model")
    save_model(folder, ParamNet(NetworkConfig(hidden=32, f0_hidden=16, causal_frames=True, voice=voice)))
    return folder


@pytest.fixture
def graph_file(tmp_path):
    """Write graph YAML to a file; ``{custom}`` in it names the custom test nodes module."""

    def make(text: str, name: str = "g.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text.replace("{custom}", str(CUSTOM_NODES)))
        return path

    return make
