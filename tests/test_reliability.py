"""Bad input and interrupted runs lose nothing (issue 17): each case as a user meets it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sfgraph.cli import main
from sfgraph.model.errors import ModelError
from sfgraph.model.folder_lock import FolderLock

from helpers import CUSTOM_NODES, FIXTURES, read_wav, write_wav

DATASET = FIXTURES / "bach_tiny"
ITEM = DATASET / "0000_bwv159.5_0"
TINY = ["--hidden", "16", "--segment-seconds", "1", "--batch-size", "2", "--threads", "1", "-q"]

# Two channels of a tone into one file per channel (ch0.wav, ch1.wav).
TWO_FILES = """
sample_rate: 8000
block_size: 256
imports: ["{custom}"]
nodes:
  - {id: tone, type: test_tone, params: {hz: HZ, seconds: 0.5, channels: 2}}
  - {id: out,  type: file_out,  params: {path: "{label}.wav"}}
connections:
  - tone.audio -> out.audio
"""


def train_args(model_dir, steps, *extra):
    return ["train", str(DATASET), "-o", str(model_dir), "--steps", str(steps), "--eval-every", str(steps),
            *TINY, *extra]


def two_files(graph_file, hz=440):
    return graph_file(TWO_FILES.replace("HZ", str(hz)))


def hidden_files(folder):
    return sorted(p.name for p in Path(folder).rglob(".*"))


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    return int(finished.stdout)


# 1 -------------------------------------------------------------------------
def test_train_refuses_a_non_empty_model_folder_unless_resumed_or_forced(tmp_path, capsys):
    model = tmp_path / "m"
    assert main(train_args(model, 2)) == 0
    weights = (model / "weights.pt").read_bytes()
    assert main(train_args(model, 1)) == 2
    err = capsys.readouterr().err
    assert f"{model} is not empty" in err and "--resume" in err and "--force" in err
    assert (model / "weights.pt").read_bytes() == weights
    assert main(train_args(model, 1, "--resume", "--force")) == 2
    assert "give one of them" in capsys.readouterr().err
    (model / ".weights.pt.abc123.partial").write_bytes(b"left by a killed run")
    assert main(train_args(model, 1, "--force")) == 0
    assert (model / "log.csv").read_text().splitlines()[1:][0].startswith("1,")  # the new run's log only
    assert len((model / "log.csv").read_text().splitlines()) == 2
    assert hidden_files(model) == []


# 2 -------------------------------------------------------------------------
def test_a_second_run_into_a_locked_folder_fails_at_once_naming_the_first(tmp_path, capsys):
    model = tmp_path / "m"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom sfgraph.model.folder_lock import FolderLock\n"
         f"with FolderLock({str(model)!r}):\n    print('locked', flush=True)\n    time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(train_args(model, 1)) == 2
        assert f"{model} is in use by another process (PID {holder.pid})" in capsys.readouterr().err
        with pytest.raises(ModelError, match=f"PID {holder.pid}"):
            with FolderLock(model):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file stays with the dead PID in it
        holder.wait()
    assert (model / ".lock").read_text().strip() == str(holder.pid)
    with FolderLock(model):  # taken over
        assert (model / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(ModelError, match=f"PID {os.getpid()}"):
            with FolderLock(model):  # the same process locking twice fails too
                pass
    assert list(model.iterdir()) == []  # the lock file goes with its holder


# 7 -------------------------------------------------------------------------
def test_data_check_applies_the_rules_of_train(tmp_path, capsys):
    dataset = tmp_path / "data"
    shutil.copytree(DATASET, dataset)
    item = dataset / "0001_bwv93.7_0"
    shutil.rmtree(item / "stems")
    mix, rate = read_wav(item / "mix.wav")
    seconds = np.arange(round(mix.shape[1] / rate * 44100)) / 44100
    write_wav(item / "mix.wav", np.interp(seconds, np.arange(mix.shape[1]) / rate, mix[0])[None], 44100)
    problem = f"{item / 'mix.wav'}: sample rate 44100 Hz, expected 16000 Hz"
    assert main(["data", "check", str(dataset)]) == 2
    assert problem in capsys.readouterr().err
    assert main(train_args(tmp_path / "m", 1)[:1] + [str(dataset)] + train_args(tmp_path / "m", 1)[2:]) == 2
    assert problem in capsys.readouterr().err
    assert main(["data", "check", str(dataset), "--any-rate"]) == 0
    assert "sample rate 16000, 44100 Hz" in capsys.readouterr().out
    assert main(["data", "check", str(DATASET), "--validation-items", "3"]) == 2
    assert "3 item(s); training needs more than the 3 held out" in capsys.readouterr().err
    assert main(["data", "check", str(DATASET)]) == 0
    assert "ready for 'sfgraph train'" in capsys.readouterr().out


def test_a_zero_time_budget_is_an_error(tmp_path, capsys):
    assert main(train_args(tmp_path / "m", 10, "--max-minutes", "0")) == 2
    assert "--max-minutes must be positive, not 0.0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
