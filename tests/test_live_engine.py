"""The live engine on a real (dummy-clocked) JACK server: live equals offline, MIDI
control, node errors while running, a device that disappears, the commands."""
from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sfgraph.cli import main as live_main
from sfgraph.engine.live import LiveEngine, build_live_graph
from sfgraph.engine.midi_map import midi_receiver, parse_midi_map
from sfgraph.engine.offline import render
from sfgraph.graph.build import build_graph
from sfgraph.graph.declaration import Connection, NodeDecl, load_graph_decl
from sfgraph.midi_io import open_midi_input

import test_live_parts  # noqa: F401  (registers the test_live_glitch node)
from helpers import FIXTURES, read_wav, write_wav
from jack import start_or_skip

ITEM = FIXTURES / "bach_tiny" / "0000_bwv159.5_0"
VOICES = ("soprano", "alto", "tenor", "bass")


@pytest.fixture(scope="module")
def jack(tmp_path_factory):
    server = start_or_skip("sfg", tmp_path_factory.mktemp("jack"))
    server.use_in_this_process()
    yield server
    server.stop()


def loop_back(jack, channels: int):
    """An ``on_open`` that connects the stream's outputs 1..channels to its inputs 1..channels."""

    def on_open(stream):
        ports = [p for p in jack.ports() if p.startswith("PortAudio:")]
        by_number = lambda p: int(p.rsplit("_", 1)[1])  # noqa: E731
        outs = sorted((p for p in ports if ":out_" in p), key=by_number)
        ins = sorted((p for p in ports if ":in_" in p), key=by_number)
        for source, destination in zip(outs[:channels], ins[:channels]):
            jack.connect(source, destination)

    return on_open


def live_equals_offline(jack, decl, mix, tmp_path, ahead_blocks: int = 4) -> np.ndarray:
    """Render a graph offline, then run it live, both with the file ``mix`` in place of
    the microphone (``mic``), and record what the device plays (``out``, four channels)
    through a JACK loopback: assert that the recording is the offline render delayed
    by the reported latency, and return the offline render (4, samples)."""
    mic = decl.node("mic")
    mic.type, mic.params = "file_in", {"path": str(mix)}
    render(build_graph(decl, output_dir=tmp_path / "offline"), progress=False)
    offline = np.concatenate([read_wav(tmp_path / "offline" / f"{v}.wav")[0] for v in VOICES])

    line = decl.node("out").line
    decl.nodes += [NodeDecl("loop", "device_in", {"channels": 4}, line),
                   NodeDecl("rec", "file_out", {"path": "loopback.wav"}, line)]
    decl.connections.append(Connection("loop", "audio", "rec", "audio", line))
    engine = LiveEngine(build_live_graph(decl, tmp_path / "live"), ahead_blocks=ahead_blocks)
    engine.prepare()
    seconds = offline.shape[-1] / 48000
    connect, frozen = loop_back(jack, 4), []

    def on_open(stream):
        frozen.append(gc.get_freeze_count())
        connect(stream)

    report = engine.run(duration=seconds + 0.3, on_open=on_open)
    # while it runs, what was alive at the start is out of the collector's reach (a full
    # collection would hold the GIL for about 0.1 s); afterwards it is back
    assert frozen[0] > 10_000 and gc.get_freeze_count() == 0
    assert report.ended == "duration reached" and report.node_errors == 0
    assert report.xrun_reasons.get("output underrun: the worker was late, silence played", 0) == 0
    latency = engine.latency.total
    assert report.latency_ms == pytest.approx(1000 * latency / 48000, abs=1e-3)
    assert engine.latency.device_input + engine.latency.device_output == 2 * 256  # the loopback's round trip
    # the parts the graph itself reports (validate, render): its nodes' latency and look-ahead
    assert abs(engine.latency.nodes + engine.latency.lookahead - engine.graph.total_latency() * 48000) <= 1
    recorded = read_wav(tmp_path / "live" / "loopback.wav")[0]
    # offline cuts the outputs at the input's end, live they ring on: compare up to 5 ms
    # before. (A late JACK cycle on a loaded machine, flagged as a device xrun, loses
    # nothing on the dummy backend; a late worker would, hence the assertion above.)
    end = offline.shape[-1] - 240
    lags = range(latency - 40, latency + 41)
    correlation = [np.sum(recorded[0, lag:lag + end] * offline[0, :end]) for lag in lags]
    assert lags[int(np.argmax(correlation))] == latency
    np.testing.assert_allclose(recorded[:, latency:latency + end], offline[:, :end], atol=5e-4)
    np.testing.assert_array_equal(recorded[:, :latency - engine.latency.nodes], 0)  # the primed silence
    # the report's levels are those of what each device node took in or played
    for channel in range(4):
        loop = report.levels_dbfs[f"loop.ch{channel}"]
        assert loop["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(recorded[channel]).max()), abs=0.01)
        assert loop["rms_dbfs"] == pytest.approx(10 * np.log10(np.mean(recorded[channel] ** 2)), abs=0.01)
        played = report.levels_dbfs[f"out.{VOICES[channel]}"]
        assert played["peak_dbfs"] == pytest.approx(loop["peak_dbfs"], abs=0.1)  # (metered before resampling to 48 kHz)
    return offline


def test_live_equals_offline_up_to_the_reported_latency(jack, tiny_model, tmp_path):
    """separate_live with a file in place of the microphone: what the device plays
    (recorded through a JACK loopback) is the offline render delayed by the latency."""
    decl = load_graph_decl("separate_live", [f"net.model={tiny_model}", f"f0.dir={ITEM / 'f0'}"])
    live_equals_offline(jack, decl, ITEM / "mix.wav", tmp_path)


def test_one_microphone_alone_separates_live_as_offline(jack, tiny_model, tmp_path):
    """separate_live_mic (F0 from the microphone, f0_multi's live mode) on the first 4 s
    of the demo clip: offline, the bundled model's voices come out well above the
    mixture; live equals offline up to the reported latency, 48 ms of it the graph's
    (16 ms of F0 look-ahead). Live runs the small test model, as the test above, so that
    a busy machine does not make the worker late."""
    from scipy.signal import resample_poly

    from sfgraph.evaluation.scoring import si_sdr_db
    from sfgraph.resources import resolve_resource

    demo = resolve_resource("sfgraph:assets/demo/quartet")
    samples = 4 * 16000
    mix = read_wav(demo / "mix.wav")[0][0, :samples]
    write_wav(tmp_path / "mix.wav", mix, 16000)
    decl = load_graph_decl("separate_live_mic", [f"mic.file={tmp_path / 'mix.wav'}"])
    graph = build_graph(decl, output_dir=tmp_path / "bundled")
    assert graph.total_latency() * 1000 == 48
    render(graph, progress=False)
    voices = np.concatenate([read_wav(tmp_path / "bundled" / f"{v}.wav")[0] for v in VOICES])
    stems = np.stack([read_wav(demo / "stems" / f"{v}.wav")[0][0, :samples] for v in VOICES])
    ours = np.mean(si_sdr_db(stems, resample_poly(voices, 1, 3, axis=1)[:, :samples]))  # 48 -> 16 kHz
    floor = np.mean(si_sdr_db(stems, np.repeat(mix[None], len(VOICES), axis=0)))
    assert ours > floor + 6, (ours, floor)

    decl = load_graph_decl("separate_live_mic", [f"net.model={tiny_model}"])
    # The tracker's frame and the model's hop fall due in the same block, one in three
    # (2-3 ms of work in a 5.3-ms block): on a busy machine a few such blocks in a row
    # outrun separate_live's head start of 4 blocks, so the worker gets 8.
    live_equals_offline(jack, decl, tmp_path / "mix.wav", tmp_path, ahead_blocks=8)


MIDI_GAIN = """\
sample_rate: 48000
block_size: 256
nodes:
  - {id: src, type: file_in, params: {path: dc.wav}}
  - {id: g, type: gain, params: {db: 0}}
  - {id: out, type: device_out}
  - {id: rec, type: file_out, params: {path: gain.wav}}
connections:
  - src.audio -> g.audio
  - g.audio -> out.audio
  - g.audio -> rec.audio
midi:
  smoothing_ms: 30
  map:
    - {cc: 7, param: g.db, range: [-60, 0]}
"""


def test_midi_cc_moves_the_gain_within_two_blocks_without_a_step(jack, graph_file, tmp_path):
    import rtmidi

    write_wav(tmp_path / "dc.wav", np.full(48000, 0.5, dtype=np.float32), 48000)
    graph = build_live_graph(load_graph_decl(str(graph_file(MIDI_GAIN))), tmp_path)
    engine = LiveEngine(graph, smoothing_ms=parse_midi_map(graph).smoothing_ms)
    engine.prepare()
    midi_in = open_midi_input(midi_receiver(parse_midi_map(graph), engine.control), api="jack")
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="sfgraph-test-sender")
    try:
        sender.open_port(next(i for i, p in enumerate(sender.get_ports()) if p == midi_in.port))
        sent = []

        def send_once(engine):
            if not sent and engine.frames_played > 0.4 * 48000:
                sender.send_message([0xB0, 7, 0])  # fader down: -60 dB
                sent.append(engine.scheduler.ticks)

        report = engine.run(on_status=send_once)
    finally:
        sender.close_port()
        midi_in.close()
    assert report.ended == "input ended"  # (device xruns, on a loaded machine, do not matter here)
    change = engine.control.applied[0]
    assert (change.target, change.value, change.source) == ("g.db", -60.0, "midi")
    assert change.applied_block - change.submitted_block <= 2
    out = read_wav(tmp_path / "gain.wav")[0][0]
    first = (change.applied_block - 1) * 256  # the first sample of the first block it shaped
    np.testing.assert_allclose(out[:first], 0.5, rtol=1e-6)
    assert out[first + 255] < 0.5 * 0.99
    glide = math.ceil(0.030 / (256 / 48000)) * 256  # 30 ms of smoothing, in whole blocks
    np.testing.assert_allclose(out[first + glide:48000], 0.5e-3, rtol=1e-4)  # -60 dB once the glide is over
    assert np.max(np.abs(np.diff(out))) < 0.5 / 256  # ramps, no step


GLITCHY = """\
sample_rate: 48000
block_size: 256
nodes:
  - {id: src, type: file_in, params: {path: dc.wav}}
  - {id: glitch, type: test_live_glitch, params: {raise_at: 40, nan_at: 60}}
  - {id: out, type: device_out}
  - {id: rec, type: file_out, params: {path: glitch.wav}}
connections:
  - src.audio -> glitch.audio
  - glitch.audio -> out.audio
  - glitch.audio -> rec.audio
"""


def test_a_failing_node_costs_one_silent_block_and_the_stream_goes_on(jack, graph_file, tmp_path):
    write_wav(tmp_path / "dc.wav", np.full(24000, 0.5, dtype=np.float32), 48000)
    engine = LiveEngine(build_live_graph(load_graph_decl(str(graph_file(GLITCHY))), tmp_path))
    engine.prepare()
    report = engine.run()
    assert report.ended == "input ended" and report.blocks > 80
    assert report.node_errors == 2
    assert [(e["block"], e["node"]) for e in report.errors] == [(40, "glitch"), (60, "glitch")]
    assert "deliberate glitch" in report.errors[0]["message"] and "NaN" in report.errors[1]["message"]
    out = read_wav(tmp_path / "glitch.wav")[0][0]
    silent = np.zeros(out.size, dtype=bool)
    silent[39 * 256:40 * 256] = silent[59 * 256:60 * 256] = True
    silent[24000:] = True  # after the file
    np.testing.assert_array_equal(out[silent], 0)
    np.testing.assert_array_equal(out[~silent], 0.5)


def test_a_run_that_fails_at_the_start_leaves_the_garbage_collector_as_it_was(jack, graph_file, tmp_path):
    """LiveEngine.run freezes the objects alive at its start (see the live-equals-offline
    test) and thaws them however it ends, here by an ``on_open`` that raises (whose error
    is the one reported: the worker it never started is not joined); a caller's own freeze
    is left to the caller."""
    write_wav(tmp_path / "dc.wav", np.full(24000, 0.5, dtype=np.float32), 48000)

    def failing_open(stream):
        raise RuntimeError("no ports")

    for frozen_before in (False, True):
        engine = LiveEngine(build_live_graph(load_graph_decl(str(graph_file(GLITCHY))), tmp_path))
        engine.prepare()
        if frozen_before:
            gc.freeze()
        with pytest.raises(RuntimeError, match="no ports"):
            engine.run(on_open=failing_open)
        assert (gc.get_freeze_count() > 10_000) == frozen_before  # frozen objects freed since count down
        gc.unfreeze()


RECORDER = """\
sample_rate: 48000
block_size: 256
nodes:
  - {id: mic, type: device_in, params: {channels: 2}}
  - {id: g, type: gain, params: {db: -3}}
  - {id: out, type: device_out}
  - {id: rec, type: file_out, params: {path: take.wav}}
connections:
  - mic.audio -> g.audio
  - g.audio -> out.audio
  - g.audio -> rec.audio
"""


def test_a_device_that_disappears_ends_the_run_cleanly(tmp_path, graph_file):
    """In a subprocess with its own server: PortAudio aborts the process that closes a
    stream whose server died, so the run must end without closing it."""
    path = graph_file(RECORDER)
    server = start_or_skip("sfglost", tmp_path)
    command = [sys.executable, "-m", "sfgraph", "live", str(path), "--duration", "30",
               "-o", str(tmp_path / "out"), "--report", str(tmp_path / "report.json"), "-q"]
    process = subprocess.Popen(command, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    try:
        started = process.stdout.readline()  # the start line, printed once the stream is open
        assert "latency" in started, process.stderr.read()
        time.sleep(0.5)
        assert list((tmp_path / "out").glob(".take.partial-*.wav"))  # being written
        server.kill()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        server.kill()
    assert process.returncode == 3, err
    assert "device lost: the audio device stopped; the graph's output files were discarded" in err
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ended"].startswith("device lost") and report["blocks"] > 0
    # the dummy backend's inputs are silent: the report shows a dead microphone as such
    assert report["levels_dbfs"]["mic.ch0"] == {"peak_dbfs": -90.0, "rms_dbfs": -90.0}


def run_cli(*argv) -> tuple[int, str]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = live_main(list(argv))
    return code, output.getvalue()


def test_live_command_runs_choir_fx_midi_and_reports(jack, tiny_model, tmp_path):
    report_path = tmp_path / "report.json"
    code, output = run_cli("live", "choir_fx_midi", "-p", f"net.model={tiny_model}", "-p", f"f0.dir={ITEM / 'f0'}",
                           "--duration", "1.5", "--report", str(report_path), "-o", str(tmp_path), "-q")
    assert code == 0, output
    assert "latency" in output.splitlines()[0]
    assert re.search(r"MIDI: 36 mapping\(s\) on sfgraph(-\d+)?:midi_in", output)
    report = json.loads(report_path.read_text())
    for key in ("xruns", "underruns", "overruns", "latency_ms", "cpu_load", "blocks", "latency_parts_ms"):
        assert key in report
    assert report["ended"] == "duration reached" and report["blocks"] >= 1.5 * 48000 / 256
    assert 0 < report["cpu_load"] < 1 and report["latency_ms"] > report["latency_parts_ms"]["nodes"]
    assert 0 <= report["cpu_stolen"] < 1  # the hypervisor's share, for reading device xruns


def test_a_device_with_too_few_channels_is_named_with_the_nodes_that_need_them(jack, tiny_model, tmp_path):
    # choir_fx plays stereo: from the server's 8th output on, it needs a 9th
    code, output = run_cli("live", "choir_fx", "-p", f"net.model={tiny_model}", "-p", f"f0.dir={ITEM / 'f0'}",
                           "-p", "out.first_channel=8", "--duration", "0.5", "-o", str(tmp_path), "-q")
    assert code == 3, output
    assert re.search(r"output channels up to 9 \(node 'out' channels 8-9\) but \S+ has 8", output), output
    assert not any(tmp_path.iterdir())


def test_devices_lists_the_jack_device(jack):
    code, output = run_cli("devices")
    assert code == 0 and "system" in output and "JACK" in output


def test_midi_learn_checks_every_target_before_listening(tiny_model, tmp_path):
    code, output = run_cli("midi-learn", "choir_fx", "mix.pan[0]", "mix.gain_db", "-p", f"net.model={tiny_model}",
                           "-p", f"f0.dir={ITEM / 'f0'}", "-o", str(tmp_path / "learned.yaml"))
    assert code == 2 and "mix.gain_db: 'gain_db' is a list[float]; name one item ([i])" in output
    assert "move a control" not in output and "listening" not in output and not any(tmp_path.iterdir())


def test_midi_learn_maps_the_next_control(jack, tiny_model, tmp_path):
    import rtmidi

    graph = tmp_path / "fx.yaml"
    original = load_graph_decl("choir_fx").file
    graph.write_text(open(original).read())
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="sfgraph-test-learn")
    before = set(sender.get_ports())

    def move_a_fader():
        for _ in range(200):
            ports = sender.get_ports()
            opened = [p for p in ports if p not in before and p.endswith(":midi_in")]
            if opened:
                sender.open_port(ports.index(opened[0]))
                time.sleep(0.2)
                sender.send_message([0xB1, 14, 90])  # CC 14 on channel 2
                return
            time.sleep(0.05)

    thread = threading.Thread(target=move_a_fader)
    thread.start()
    try:
        code, output = run_cli("midi-learn", str(graph), "mix.gain_db[2]", "-p", f"net.model={tiny_model}",
                               "-p", f"f0.dir={ITEM / 'f0'}", "--timeout", "10", "-o", str(tmp_path / "learned.yaml"))
    finally:
        thread.join()
        sender.close_port()
    assert code == 0, output
    learned = load_graph_decl(str(tmp_path / "learned.yaml"))
    assert learned.midi["map"] == [{"cc": 14, "channel": 2, "param": "mix.gain_db[2]", "range": [-60.0, 6.0]}]
    assert [n.id for n in learned.nodes] == [n.id for n in load_graph_decl(str(graph)).nodes]

