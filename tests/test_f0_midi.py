"""Live MIDI as F0 (sfgraph.f0.midi_live and the f0_midi node), through JACK MIDI on a private server."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jack import start_or_skip
from sfgraph.f0.midi_live import NotesToF0
from sfgraph.graph.node import GraphContext
from sfgraph.graph.registry import node_types


def hz(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def test_notes_follow_the_latest_key_per_channel_with_pitch_bend():
    notes = NotesToF0(channels=[0, 2], bend_range=2.0)
    assert list(notes.current()) == [0.0, 0.0]
    for message in ([0x90, 60, 100], [0x92, 48, 90], [0x90, 64, 100], [0x91, 70, 100]):  # channel 2 plays no voice
        notes.receive(message)
    np.testing.assert_allclose(notes.current(), [hz(64), hz(48)])
    notes.receive([0x80, 64, 0])  # release the top key: back to the one still held
    notes.receive([0xE2, 0x00, 0x60])  # bend channel 3 to 12288: half way up, +1 semitone
    np.testing.assert_allclose(notes.current(), [hz(60), hz(49)])
    notes.receive([0x90, 60, 0])  # note-on with velocity 0 is a release
    notes.receive([0xB2, 123, 0])  # all notes off
    np.testing.assert_allclose(notes.current(), [0.0, 0.0])


def test_node_refuses_offline_renders(tmp_path):
    node = node_types()["f0_midi"]("keys", {})
    with pytest.raises(ValueError, match="live graphs only.*f0_score"):
        node.configure({}, GraphContext(16000, 256, tmp_path, tmp_path, "offline"))


def test_notes_sent_through_jack_midi_reach_the_node(tmp_path, monkeypatch):
    import rtmidi

    server = start_or_skip("f0midi", tmp_path)
    keyboard = node = None
    try:
        for name, value in server.env.items():
            if name.startswith("JACK_"):
                monkeypatch.setenv(name, value)
        node = node_types()["f0_midi"]("keys", {"voices": ["soprano", "bass"], "channels": [1, 4],
                                                "bend_range": 12})
        context = GraphContext(16000, 256, tmp_path, tmp_path, "live")
        node.output_specs = node.configure({}, context)
        node.context = context
        node.prepare()
        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="keyboard")
        keyboard.open_virtual_port("out")
        server.connect("keyboard:out", "sfgraph-f0:keys")
        for message in ([0x90, 72, 100], [0x93, 40, 100], [0xE3, 0x00, 0x50]):  # bass bent by 2048: +3 semitones
            keyboard.send_message(message)
        expected = [hz(72), hz(43)]
        deadline = time.monotonic() + 5
        while True:
            f0 = node.process(n=3)["f0"]
            if np.allclose(f0[:, -1], expected) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert f0.shape == (2, 3)
        np.testing.assert_allclose(f0, np.repeat(np.array(expected)[:, None], 3, axis=1), rtol=1e-6)
    finally:
        if keyboard is not None:
            keyboard.close_port()
            del keyboard
        if node is not None:
            node.close()
        server.stop()
