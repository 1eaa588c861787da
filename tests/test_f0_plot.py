"""`sfgraph f0 --plot`: the F0 tracks drawn over the recording's spectrogram."""
from __future__ import annotations

import numpy as np

from sfgraph.cli import main
from sfgraph.f0.plot import plot_f0
from sfgraph.resources import resolve_path


def test_plot_draws_each_voice_over_the_spectrogram(tmp_path):
    import matplotlib.image

    rate, hop = 16000, 256
    t = np.arange(2 * rate) / rate
    mixture = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)
    f0 = np.zeros((3, 2 * rate // hop + 1))
    f0[0], f0[1, 20:60] = 330.0, 220.0  # the third voice is silent throughout
    plot_f0(tmp_path / "f0.png", mixture, f0, ("soprano", "alto", "bass"), rate, hop)
    image = matplotlib.image.imread(tmp_path / "f0.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    colourful = np.ptp(image[..., :3], axis=-1) > 0.3  # the tracks; the spectrogram is grey
    assert colourful.sum() > 200
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary left


def test_f0_command_writes_the_plot_and_refuses_other_formats(tmp_path, capsys):
    mix = resolve_path("sfgraph:assets/demo/quartet/mix.wav")
    assert main(["f0", str(mix), "--method", "multif0", "-o", str(tmp_path / "f0"), "--plot",
                 str(tmp_path / "f0.png")]) == 0
    assert (tmp_path / "f0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["f0", str(mix), "--method", "multif0", "-o", str(tmp_path / "f0"), "--plot",
                 str(tmp_path / "f0.jpg")]) == 2
    assert "--plot" in capsys.readouterr().err and not (tmp_path / "f0.jpg").exists()


def test_an_svg_plot_keeps_the_tracks_as_lines_and_the_spectrogram_as_one_image(tmp_path):
    rate, hop = 16000, 256
    t = np.arange(4 * rate) / rate
    f0 = np.full((2, 4 * rate // hop + 1), 220.0)
    f0[1] = 330.0
    plot_f0(tmp_path / "f0.svg", np.sin(2 * np.pi * 220 * t), f0, ("soprano", "alto"), rate, hop)
    svg = (tmp_path / "f0.svg").read_text()
    assert svg.count("<image") == 1 and "soprano" in svg and "alto" in svg
    assert len(svg) < 1_000_000  # a vector cell per bin and frame made 12 MB for 4 s
