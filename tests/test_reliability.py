"""Bad input and interrupted runs lose nothing (issue 17): each case as a user meets it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from sfgraph.cli import main
from sfgraph.graph.errors import InputWarning
from sfgraph.atomic import commit_together, partial_path
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
    holder = subprocess.Popen([sys.executable, "-m", "sfgraph.train", *train_args(model, 100000)[1:]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while holder.poll() is None and time.monotonic() < deadline and not (
                (model / ".lock").exists() and (model / ".lock").read_text().strip() == str(holder.pid)):
            time.sleep(0.05)
        assert holder.poll() is None, "the first run ended early"
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
    assert not (model / ".lock").exists()  # the lock file goes with its holder


# 3 -------------------------------------------------------------------------
def test_a_folder_in_the_way_of_one_output_changes_no_output(tmp_path, graph_file, capsys):
    out = tmp_path / "out"
    assert main(["render", str(two_files(graph_file, 440)), "-o", str(out), "-q"]) == 0
    old = (out / "ch0.wav").read_bytes()
    (out / "ch1.wav").unlink()
    (out / "ch1.wav").mkdir()
    assert main(["render", str(two_files(graph_file, 880)), "-o", str(out), "-q"]) == 2
    assert f"cannot write {out / 'ch1.wav'}: a folder of that name is in the way" in capsys.readouterr().err
    assert (out / "ch0.wav").read_bytes() == old
    assert hidden_files(out) == []


def test_a_commit_that_fails_halfway_puts_the_old_files_back(tmp_path):
    first, second = tmp_path / "soprano.wav", tmp_path / "alto.wav"
    first.write_bytes(b"old soprano")
    second.write_bytes(b"old alto")
    partial_path(first).write_bytes(b"new soprano")  # the alto's temporary is gone: its move fails
    with pytest.raises(OSError, match="cannot write .*alto.wav: .*no output was changed"):
        commit_together([(partial_path(first), first), (partial_path(second), second)])
    assert first.read_bytes() == b"old soprano" and second.read_bytes() == b"old alto"
    assert hidden_files(tmp_path) == []
    partial_path(first).write_bytes(b"new soprano")
    partial_path(second).write_bytes(b"new alto")
    commit_together([(partial_path(first), first), (partial_path(second), second)])
    assert first.read_bytes() == b"new soprano" and second.read_bytes() == b"new alto"
    assert hidden_files(tmp_path) == []


# 4 -------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(tmp_path, graph_file, signum):
    graph = graph_file(TWO_FILES.replace("HZ", "440").replace("seconds: 0.5", "seconds: 600")
                       .replace("tone.audio -> out.audio", "tone.audio -> slow.audio\n  - slow.audio -> out.audio")
                       .replace("  - {id: out,", "  - {id: slow, type: test_slow}\n  - {id: out,"))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "sfgraph", "render", str(graph), "-o", str(out), "-q"],
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not hidden_files(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hidden_files(out), "the render never started writing"
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signum
    assert f"interrupted by {signal.Signals(signum).name}; no partial outputs were kept" in err
    assert list(out.iterdir()) == []


def test_a_render_removes_the_partial_files_of_dead_processes(tmp_path, graph_file):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".ch0.partial-{dead_pid()}.wav"
    running = out / f".ch0.partial-{os.getppid()}.wav"  # a live process's: not ours to touch
    stale.write_bytes(b"x" * 1000)
    running.write_bytes(b"x")
    assert main(["render", str(two_files(graph_file)), "-o", str(out), "-q"]) == 0
    assert not stale.exists() and running.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["ch0.wav", "ch1.wav"]


# 5 -------------------------------------------------------------------------
def test_f0_files_shorter_than_the_mixture_are_named_with_the_seconds_missing(tmp_path, tiny_model, capsys):
    f0 = tmp_path / "f0"
    shutil.copytree(ITEM / "f0", f0)
    for voice in ("tenor", "bass"):  # cover 1 s of the 3-s mixture
        lines = (f0 / f"{voice}.csv").read_text().splitlines()
        (f0 / f"{voice}.csv").write_text("\n".join(lines[:64]) + "\n")
    assert main(["separate", str(ITEM / "mix.wav"), "--f0", str(f0), "--model", str(tiny_model),
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    for voice, line in zip(("tenor", "bass"), warnings):
        assert f"{f0 / voice}.csv ends at 0.99 s but the audio lasts 3.00 s: the last 2.01 s get no f0" in line


def test_f0_with_no_voiced_frame_or_outside_the_range_of_singing_warns(tmp_path, tiny_model):
    from sfgraph.engine.offline import coverage_warnings
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.declaration import load_graph_decl

    f0 = tmp_path / "f0"
    shutil.copytree(ITEM / "f0", f0)
    times = np.arange(188) * 0.016
    rows = {"soprano": np.zeros(188), "alto": np.full(188, 20000.0), "bass": np.where(times < 1, 110.0, 1.0)}
    for voice, values in rows.items():
        (f0 / f"{voice}.csv").write_text("time_s,f0_hz\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values)))
    decl = load_graph_decl("separate", [f"f0.dir={f0}", f"mix.path={ITEM / 'mix.wav'}", f"net.model={tiny_model}"])
    with pytest.warns(InputWarning) as record:
        graph = build_graph(decl, output_dir=tmp_path / "out")
    messages = [str(w.message) for w in record]
    assert messages == [f"{f0 / 'soprano.csv'}: no voiced frame (0 Hz throughout): this voice gets nothing",
                        f"{f0 / 'alto.csv'}: 188 voiced frame(s) outside 25-3000 Hz, the range of singing "
                        "(first 20000 Hz at 0.00 s)",
                        f"{f0 / 'bass.csv'}: 125 voiced frame(s) outside 25-3000 Hz, the range of singing "
                        "(first 1 Hz at 1.01 s)"]
    assert coverage_warnings(graph) == []  # the unchanged files cover the whole mixture


# 6 -------------------------------------------------------------------------
def test_a_huge_block_size_is_refused_by_validate(graph_file, capsys):
    graph = graph_file(TWO_FILES.replace("HZ", "440").replace("block_size: 256", "block_size: 1000000000"))
    assert main(["validate", str(graph)]) == 2
    assert (f"{graph}:3: 'block_size' must be a whole number from 1 to 1048576 samples, got 1000000000"
            in capsys.readouterr().err)


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


# 8 -------------------------------------------------------------------------
def test_a_stereo_mixture_is_separated_as_its_average_saying_so(tmp_path, tiny_model, capsys):
    mono, rate = read_wav(ITEM / "mix.wav")
    stereo = write_wav(tmp_path / "stereo.wav", np.concatenate([mono, mono]), int(rate))
    assert main(["separate", str(stereo), "--f0", str(ITEM / "f0"), "--model", str(tiny_model),
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    assert f"warning: {stereo} has 2 channels; using their average (mono)" in capsys.readouterr().err
    assert main(["separate", str(ITEM / "mix.wav"), "--f0", str(ITEM / "f0"), "--model", str(tiny_model),
                 "-o", str(tmp_path / "mono"), "-q"]) == 0
    for voice in ("soprano", "bass"):
        np.testing.assert_allclose(read_wav(tmp_path / "out" / f"{voice}.wav")[0],
                                   read_wav(tmp_path / "mono" / f"{voice}.wav")[0], atol=1e-5)


def test_a_cycle_error_names_only_the_nodes_on_the_cycle(graph_file, capsys):
    graph = graph_file("""
imports: ["{custom}"]
nodes:
  - {id: t,   type: test_tone}
  - {id: m,   type: mixer, params: {inputs: 2}}
  - {id: g,   type: gain}
  - {id: out, type: file_out, params: {path: x.wav}}
connections:
  - t.audio -> m.in0
  - m.audio -> g.audio
  - g.audio -> m.in1
  - g.audio -> out.audio
""")
    assert main(["validate", str(graph)]) == 2
    err = capsys.readouterr().err
    assert "cycle between nodes m, g (connections on lines 10, 11)" in err and "out" not in err.split("cycle")[1]


def test_an_output_folder_that_is_a_file_is_refused_before_the_model_loads(tmp_path, capsys):
    existing = tmp_path / "existing"
    existing.write_text("a file")
    code = main(["separate", str(ITEM / "mix.wav"), "--f0", str(ITEM / "f0"), "--model", str(tmp_path / "nowhere"),
                 "-o", str(existing), "-q"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"sfgraph separate: error: -o {existing}: {existing} is a file, not a folder"
    assert main(train_args(existing, 1)) == 2
    assert capsys.readouterr().err.strip() == f"sfgraph train: error: {existing} is a file, not a folder"
    assert existing.read_text() == "a file"


def test_a_read_only_output_folder_is_named_with_the_reason(graph_file, capsys):
    # Root writes through permission bits: as root, render as "nobody" (effective user id).
    shared = Path(tempfile.mkdtemp())
    try:
        shared.chmod(0o755)
        graph = shared / "g.yaml"
        graph.write_text(TWO_FILES.replace("HZ", "440").replace("{custom}", str(CUSTOM_NODES)))
        read_only = shared / "read_only"
        read_only.mkdir(mode=0o555)
        root = os.geteuid() == 0
        if root:
            os.seteuid(65534)
        try:
            code = main(["render", str(graph), "-o", str(read_only / "voices"), "-q"])
        finally:
            if root:
                os.seteuid(0)
        assert code == 2
        assert capsys.readouterr().err.strip() == (
            f"sfgraph render: error: -o {read_only / 'voices'}: {read_only} is not writable (read-only folder or file system)")
        assert list(read_only.iterdir()) == []
    finally:
        shutil.rmtree(shared)


# 9 -------------------------------------------------------------------------
def test_an_empty_mixture_is_an_error(tmp_path, tiny_model, capsys):
    empty = write_wav(tmp_path / "empty.wav", np.zeros((1, 0)), 16000)
    assert main(["separate", str(empty), "--f0", str(ITEM / "f0"), "--model", str(tiny_model),
                 "-o", str(tmp_path / "out"), "-q"]) == 2
    assert f"audio file {empty} is empty (0 samples)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_zero_time_budget_is_an_error(tmp_path, capsys):
    assert main(train_args(tmp_path / "m", 10, "--max-minutes", "0")) == 2
    assert "--max-minutes must be positive, not 0.0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# 10 ------------------------------------------------------------------------
def test_an_mp3_lines_up_with_the_wav_it_was_made_from(tmp_path, graph_file, capsys):
    from pedalboard.io import AudioFile

    rate, clicks = 44100, [10000, 50000]
    audio = np.zeros((1, 2 * rate), dtype=np.float32)
    audio[0, clicks] = 0.9
    mp3 = tmp_path / "clicks.mp3"
    with AudioFile(str(mp3), "w", rate, 1, quality="V2") as f:
        f.write(audio)
    graph = graph_file(f"""
sample_rate: {rate}
block_size: 4096
nodes:
  - {{id: in,  type: file_in,  params: {{path: {mp3}}}}}
  - {{id: out, type: file_out, params: {{path: copy.wav}}}}
connections:
  - in.audio -> out.audio
""")
    assert main(["render", str(graph), "-o", str(tmp_path), "-q"]) == 0
    decoded = read_wav(tmp_path / "copy.wav")[0][0]
    assert decoded.shape == (2 * rate,)
    assert [int(np.argmax(np.abs(decoded[c - 500:c + 500]))) + c - 500 for c in clicks] == clicks
    assert "warning" not in capsys.readouterr().err
    # Without its LAME tag (the first frame's "Info"/"Xing" header unreadable) the delay is unknown.
    data = bytearray(mp3.read_bytes())
    for marker in (b"Info", b"Xing"):
        at = data.find(marker)
        if 0 <= at < 200:
            data[at:at + 4] = b"\0\0\0\0"
    mp3.write_bytes(bytes(data))
    assert main(["render", str(graph), "-o", str(tmp_path), "-q"]) == 0
    assert f"warning: {mp3}: an MP3 without a LAME tag" in capsys.readouterr().err


# 11 ------------------------------------------------------------------------
def test_relative_output_paths_stay_inside_the_output_folder(tmp_path, graph_file, capsys):
    outside = graph_file(TWO_FILES.replace("HZ", "440").replace('"{label}.wav"', '"../../x.wav"'))
    out = tmp_path / "a" / "b"
    assert main(["render", str(outside), "-o", str(out), "-q"]) == 2
    assert "node 'out': output path '../../x.wav' leads outside the output folder" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
    absolute = graph_file(TWO_FILES.replace("HZ", "440").replace('"{label}.wav"', f'"{tmp_path / "x.wav"}"'))
    assert main(["render", str(absolute), "-o", str(out), "-q"]) == 0
    assert (tmp_path / "x.wav").exists()
