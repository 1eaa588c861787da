"""MIDI in through python-rtmidi: opening ports, reading control messages, learning.

Below both the live engine (MIDI maps that move params, ``sfgraph midi-learn``)
and the nodes (``f0_midi``); it knows raw MIDI and ports, nothing of graphs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

MIDI_APIS = ("jack", "alsa")


class MidiError(Exception):
    """MIDI cannot be opened: no ALSA sequencer, no JACK server, no such port."""


def midi_api(name: str):
    """The python-rtmidi API constant for ``jack`` or ``alsa``."""
    import rtmidi

    apis = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}
    if name not in apis:
        raise MidiError(f"MIDI API must be one of {', '.join(MIDI_APIS)}, got {name!r}")
    return apis[name]


class MidiInput:
    """A MIDI input: a virtual port named ``port_name`` that controllers connect to, or,
    with ``connect``, a connection to the first existing output port whose name
    contains it. ``on_message(message)`` is called on rtmidi's thread with the raw bytes.

    Raises MidiError when MIDI cannot be opened (no ALSA sequencer, no JACK server,
    no such port).
    """

    def __init__(self, on_message, api: str = "jack", client_name: str = "sfgraph",
                 port_name: str = "midi_in", connect: str | None = None):
        import rtmidi

        try:
            self.midi_in = rtmidi.MidiIn(midi_api(api), name=client_name)
        except (rtmidi.RtMidiError, SystemError, RuntimeError) as exc:
            raise MidiError(f"cannot open MIDI ({api}): {exc}") from None
        try:
            if connect:
                ports = self.midi_in.get_ports()
                matches = [i for i, p in enumerate(ports) if connect.lower() in p.lower()]
                if not matches:
                    raise MidiError(f"no MIDI port matching {connect!r}; ports: {', '.join(ports) or 'none'}")
                self.midi_in.open_port(matches[0], port_name)
                self.port = ports[matches[0]]
            else:
                # the system may rename the client (JACK appends -01 to a name in use): find the new port
                listing = rtmidi.MidiOut(midi_api(api), name=f"{client_name}-probe")
                before = set(listing.get_ports())
                self.midi_in.open_virtual_port(port_name)
                opened = [p for p in listing.get_ports() if p not in before and port_name in p]
                del listing
                self.port = opened[0] if opened else f"{client_name}:{port_name}"
        except MidiError:
            self.close()
            raise
        except (rtmidi.RtMidiError, SystemError, RuntimeError) as exc:
            self.close()
            raise MidiError(f"cannot open MIDI port ({api}): {exc}") from None
        self.midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        self.midi_in.set_callback(lambda event, _data: on_message(event[0]))

    def close(self) -> None:
        midi_in = getattr(self, "midi_in", None)  # absent when opening MIDI failed
        if midi_in is not None:
            midi_in.cancel_callback()
            midi_in.close_port()
            self.midi_in = None
            del midi_in


def open_midi_input(on_message, api: str = "auto", connect: str | None = None) -> MidiInput:
    """A MidiInput (see there); ``api`` ``auto`` tries JACK, then ALSA."""
    errors = []
    for candidate in (MIDI_APIS if api == "auto" else (api,)):
        try:
            return MidiInput(on_message, api=candidate, connect=connect)
        except MidiError as exc:
            errors.append(str(exc))
    raise MidiError("; ".join(errors))


@dataclass(frozen=True)
class ControlMessage:
    """A control change, note on or off, or program change, decoded."""

    kind: str              # cc, note or program
    channel: int           # 1..16
    number: int            # controller, key or program, 0..127
    amount: int            # controller value or velocity, 0..127 (0 for program changes)
    pressed: bool | None   # notes: on (True) or off (False, also a note-on of velocity 0)


_KINDS = {0xB0: "cc", 0x90: "note", 0x80: "note", 0xC0: "program"}


def decode_control(message) -> ControlMessage | None:
    """A raw MIDI message (status byte first) as a ControlMessage; None for other kinds."""
    if not message:
        return None
    status, channel = message[0] & 0xF0, (message[0] & 0x0F) + 1
    kind = _KINDS.get(status)
    if kind is None:
        return None
    number, amount = (list(message[1:3]) + [0, 0])[:2]
    if kind == "program":
        return ControlMessage(kind, channel, number, 0, None)
    pressed = status == 0x90 and amount > 0 if kind == "note" else None
    return ControlMessage(kind, channel, number, amount, pressed)


def wait_for_control(next_message, timeout: float) -> ControlMessage | None:
    """MIDI learn: the first CC, note-on or program change among the raw messages
    ``next_message()`` returns (None when there is none yet) within ``timeout``
    seconds; None if none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = next_message()
        if not message:
            time.sleep(0.005)
            continue
        control = decode_control(message)
        if control is not None and control.pressed is not False:
            return control
    return None
