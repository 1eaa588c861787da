"""``sfgraph separate``: graphs/separate.yaml with the recording, its F0 source and the
mask settings filled in (``separate_graph``; this module is the one place that knows
that graph's node ids), optionally first adapted to the recording (``--adapt``)."""
from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sfgraph.cli.arguments import add_command, output_folder, written_files
from sfgraph.cli.errors import CliError

if TYPE_CHECKING:
    import numpy as np

SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".xml", ".mxl")


def separate_graph(mix: str, f0: str, *, model: str | None = None, ranges: list[str] | None = None,
                   synth: bool = False, power: float = 1.0, n_fft: int = 2048, low_n_fft: int | None = None,
                   mask_fit: float = 2.0,
                   device: str = "auto", section_cents: float | None = None, synth_noise: float | None = None,
                   basic_pitch: float | None = None):
    """The ``separate`` graph declaration for one recording.

    ``f0``: a folder of ``<voice>.csv`` (``f0_files``) or a score aligned to the recording
    (``f0_score``, by its suffix), in graphs/separate.yaml; or ``"auto"``: every voice of
    the model from the mixture (``f0_multi``, ``ranges`` one ``LOW-HIGH`` per voice),
    refined on a first separation, in graphs/separate_auto.yaml, the refined F0 also
    written to ``f0/<voice>.csv``. ``model``: a model
    folder instead of the bundled one; ``synth``: also write the synthesized voices to
    ``synth/<voice>.wav``; ``power``, ``n_fft``: the masks' exponent and STFT size;
    ``low_n_fft``: the STFT size of the written separation's masks below their crossover
    (None: the graph's, 4096, or ``n_fft`` throughout if that is as long; 0: ``n_fft``
    throughout); ``mask_fit``:
    the memory in seconds of the voices' fit to the mixture before masking (0: none);
    ``section_cents``, ``synth_noise``: the masks' section width and the synthesized
    voices' noise scale (of the separation written; ``--f0 auto``'s first pass masks with
    the harmonic part alone), None for the model's own (``separation_settings``);
    ``basic_pitch``: with ``"auto"``, f0_multi's weight of basic-pitch's salience (None: its default)."""
    from sfgraph.graph.declaration import Connection, NodeDecl, load_graph_decl

    auto = f0 == "auto"
    decl = load_graph_decl("separate_auto" if auto else "separate")
    decl.node("mix").set_param("path", mix)
    nets, masks = (("net", "net2"), ("mask", "mask2")) if auto else (("net",), ("mask",))
    output_synth, output_mask = ("synth2", "mask2") if auto else ("synth", "mask")  # the separation written
    for name in nets:
        decl.node(name).set_param("device", device)
        if model:
            decl.node(name).set_param("model", model)
    settings = separation_settings(decl.node("net").params["model"], section_cents, synth_noise)
    if "synth_noise" in settings:  # the output's voices: --f0 auto's first pass keeps its graph's 0
        decl.node(output_synth).set_param("noise", settings["synth_noise"])
    source = decl.node("f0")
    if auto:
        from sfgraph.model.checkpoint import read_model_config
        from sfgraph.resources import resolve_path

        source.set_param("voices", list(read_model_config(resolve_path(decl.node("net").params["model"]))[0].voices))
        if ranges:
            source.set_param("ranges", list(ranges))
        if basic_pitch is not None:
            source.set_param("basic_pitch", basic_pitch)
    elif Path(f0).suffix.lower() in SCORE_SUFFIXES:
        source.type, source.params = "f0_score", {}
        source.set_param("path", f0)
        source.set_param("align_to", mix)
    else:
        source.set_param("dir", f0)
    for name in masks:
        decl.node(name).set_param("power", power)
        decl.node(name).set_param("n_fft", n_fft)
        decl.node(name).set_param("fit_seconds", mask_fit)
        if "section_cents" in settings:
            decl.node(name).set_param("section_cents", settings["section_cents"])
    graph_low_n_fft = decl.node(output_mask).params.get("low_n_fft")
    if low_n_fft is not None:
        decl.node(output_mask).set_param("low_n_fft", low_n_fft or None)
    elif graph_low_n_fft is not None and graph_low_n_fft <= n_fft:  # an --n-fft as long: that size throughout
        decl.node(output_mask).set_param("low_n_fft", None)
    if auto:  # the F0 the voices were separated with, to check or to reuse (--f0 OUTPUT/f0)
        line = decl.node("out").line
        decl.nodes.append(NodeDecl("f0_out", "f0_out", {"dir": "f0"}, line))
        decl.connections.append(Connection("refine", "f0", "f0_out", "f0", line))
    if synth:
        line = decl.node("out").line
        decl.nodes.append(NodeDecl("synth_out", "file_out", {"path": "synth/{label}.wav"}, line))
        decl.connections.append(Connection(output_synth, "voices", "synth_out", "audio", line))
    return decl


def separation_settings(model: str, section_cents: float | None = None,
                        synth_noise: float | None = None) -> dict[str, float]:
    """The separation settings for ``model`` (a folder or ``sfgraph:`` path): its model.json's
    ``separation`` (``sfgraph.model.checkpoint.separation_settings``; a bad one raises
    ModelError), with the values given here (not None) in their place."""
    from sfgraph.model.checkpoint import ModelError, read_model_config
    from sfgraph.model.checkpoint import separation_settings as model_settings
    from sfgraph.resources import resolve_path

    folder = resolve_path(model)
    try:
        description = read_model_config(folder)[1]
    except ModelError:  # no model there: param_net says so when the graph is built
        description = {}
    settings = model_settings(folder, description)
    given = {"section_cents": section_cents, "synth_noise": synth_noise}
    return {**settings, **{name: value for name, value in given.items() if value is not None}}


def run_separate(args) -> int:
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph

    if args.adapt is not None and not args.adapt > 0:
        raise CliError(f"--adapt {args.adapt:g}: give the minutes to adapt for, a positive number (e.g. --adapt 3)")
    if args.adapt_steps is not None and (args.adapt is None or args.adapt_steps < 1):
        raise CliError(f"--adapt-steps {args.adapt_steps}: give a positive number of steps, with --adapt MINUTES")
    if args.basic_pitch is not None and args.f0 != "auto":
        raise CliError("--basic-pitch is a setting of --f0 auto's tracker: give it with --f0 auto")
    output = output_folder(args.output)
    decl = separate_graph(args.mix, args.f0, model=args.model,
                          ranges=[r.strip() for r in args.ranges.split(",")] if args.ranges else None,
                          synth=args.synth, power=args.power, n_fft=args.n_fft, low_n_fft=args.low_n_fft,
                          mask_fit=args.mask_fit,
                          device=args.device, section_cents=args.section_cents, synth_noise=args.synth_noise,
                          basic_pitch=args.basic_pitch)
    peaks = None
    if args.f0 == "auto":
        from sfgraph.cli.f0 import report_ranges

        options, peaks = fit_sung_ranges_to(decl)
        report_ranges(options, given=bool(args.ranges))
    graph = build_graph(decl, output_dir=output)
    if peaks is not None:
        graph.nodes["f0"].use_peaks(peaks)
    if args.adapt is not None:
        from sfgraph.model.checkpoint import spread_prior_setting

        prior = spread_prior_setting(graph.nodes["net"].model_folder)  # a bad one refused before the first pass
        adapt_to_recording(graph, args, prior,
                           refined_f0(decl, peaks, progress=not args.quiet) if args.f0 == "auto" else None)
    result = render(graph, progress=not args.quiet)
    voices = graph.nodes[graph.incoming("out")[0].connection.src].output_specs["voices"].labels
    print(f"separated {result.seconds:.1f} s into {', '.join(voices)}:")
    for path in written_files(graph):
        print(f"  {path}")
    return 0


def refined_f0(decl, peaks, progress: bool = True) -> np.ndarray:
    """The refined F0 (voices, frames) Hz of a ``separate --f0 auto`` declaration (what it
    writes to OUTPUT/f0): the nodes that feed its ``refine`` node, and the ``f0_out`` node
    after it, rendered on their own (about the cost of one separation; its ``f0`` node
    decides from ``peaks``, the recording's ``RecordingPeaks``), for ``--adapt`` to
    learn on. (The adapted model then runs both passes, so the F0 the second pass
    separates with is refined once more, on the adapted model's first separation.) On the
    real quartets adapting one minute on the tracker's own F0 instead gave 5.90 dB, below
    not adapting (5.97)."""
    import numpy as np

    from sfgraph.data.layout import read_f0_csv
    from sfgraph.engine.offline import render
    from sfgraph.graph.build import build_graph

    decl = upstream_of(decl, "refine", also={"f0_out"})
    with tempfile.TemporaryDirectory(prefix="sfgraph-refined-f0-") as folder:
        graph = build_graph(decl, output_dir=Path(folder))
        graph.nodes["f0"].use_peaks(peaks)
        render(graph, progress=progress)
        return np.stack([read_f0_csv(path)[1] for path in graph.nodes["f0_out"].written])


def upstream_of(decl, node_id: str, also: set[str] = frozenset()):
    """A copy of ``decl`` with only ``node_id``, every node that feeds it, and ``also``."""
    wanted, frontier = set(also), [node_id]
    while frontier:
        node = frontier.pop()
        if node not in wanted:
            wanted.add(node)
            frontier += [c.src for c in decl.connections if c.dst == node]
    decl = copy.deepcopy(decl)
    decl.nodes = [node for node in decl.nodes if node.id in wanted]
    decl.connections = [c for c in decl.connections if c.src in wanted and c.dst in wanted]
    return decl


def fit_sung_ranges_to(decl):
    """Give a ``separate --f0 auto`` declaration's ``f0`` node the ranges its recording sings
    (``sfgraph.f0.multif0.sung_range_options``: a first run of the tracker on the whole
    mixture, read and set up as the graph's own ``mix`` and ``f0`` nodes do) and return the
    tracker's options and the recording's salience peaks (``whole_peaks``: a
    ``RecordingPeaks``), for the graph's ``f0`` node to decide from
    (``F0Multi.use_peaks``): the salience networks run once. Ranges already given, or a
    recording with too little where every voice sounds apart, leave the declaration as it is."""
    import warnings

    from sfgraph.f0.multif0 import format_ranges, sung_range_options, whole_peaks
    from sfgraph.graph.build import build_graph
    from sfgraph.graph.errors import InputWarning

    with warnings.catch_warnings():  # the whole graph, built next, warns about its input itself
        warnings.simplefilter("ignore", InputWarning)
        graph = build_graph(upstream_of(decl, "f0"))
    options = graph.nodes["f0"].options
    mixture = graph.nodes["mix"].read_whole().mean(axis=0)
    peaks = whole_peaks(mixture, options)
    if options.ranges is None:
        options = sung_range_options(mixture, options, peaks)
        if options.ranges is not None:
            decl.node("f0").set_param("ranges", format_ranges(options.ranges))
    return options, peaks


def adapt_to_recording(graph, args, spread_prior: dict | None, f0: np.ndarray | None = None) -> None:
    """Fine-tune the separate graph's model on its own mixture and F0 (``--adapt``), write
    it to OUTPUT/model/ and give its weights to the graph's ``param_net`` nodes, which then
    separate with them (the graph is built once: score alignment and F0 files are read
    once; the model is loaded again, into torch, to be trained). ``spread_prior``: the
    model's (``spread_prior_setting``), kept in the loss. ``f0``: the F0 to learn on
    (``refined_f0`` with ``--f0 auto``), or None for the graph's F0 source's own."""
    from sfgraph.model.adapt import AdaptOptions, adapt, save_adapted_model
    from sfgraph.model.checkpoint import load_model

    mix = graph.nodes["mix"].read_whole().mean(axis=0)
    if f0 is None:
        f0 = graph.nodes["f0"].whole_track(mix)
    net = graph.nodes["net"]
    network = load_model(net.model_folder, net.device)
    options = AdaptOptions(minutes=args.adapt, max_steps=args.adapt_steps, seed=args.seed, spread_prior=spread_prior)
    try:
        model, result = adapt(network, mix, f0, options, progress=not args.quiet)
    except ValueError as exc:
        raise CliError(f"--adapt: {args.mix}: {exc}") from None
    folder = Path(args.output) / "model"
    save_adapted_model(folder, model, result, options, recording=str(Path(args.mix).resolve()),
                       start_model=graph.nodes["net"].p.model,
                       separation=separation_settings(graph.nodes["net"].p.model, args.section_cents,
                                                      args.synth_noise))
    change = (f"held-back loss {result.initial_loss:.3f} -> {result.best_loss:.3f} (step {result.best_step})"
              if result.best_step else
              f"no step beat the starting model on the held-back part (loss {result.initial_loss:.3f}): kept it")
    weights = {name: values.cpu().numpy() for name, values in model.state_dict().items()}
    for node in graph.nodes.values():
        if node.type_name == "param_net":
            node.stream.load_weights(weights)
    print(f"adapted on {result.training_seconds:.1f} s of the recording ({result.validation_seconds:.1f} s held back), "
          f"{result.steps} steps in {result.seconds / 60:.1f} min: {change}; model in {folder}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "separate", run_separate,
                    help="separate a mixture into its voices (runs graphs/separate.yaml, or "
                         "graphs/separate_auto.yaml with --f0 auto)")
    p.add_argument("mix", help="the mixture (any rate; resampled to the model's 16 kHz)")
    p.add_argument("--f0", required=True,
                   help="folder of <voice>.csv F0 files (time_s,f0_hz), a score (.mid, .musicxml) with one part "
                        "per voice (aligned to the recording), or 'auto': estimated from the mixture (multi-F0), "
                        "refined on a first separation, then separated again")
    p.add_argument("--ranges", help="with --f0 auto: LOW-HIGH note range per voice, comma-separated (e.g. "
                                    "C4-A5,F3-D5,C3-A4,E2-E4; default: the ranges the recording sings where every voice sounds, "
                                    "from a first pass of the tracker, else from the names soprano, alto, tenor, bass)")
    p.add_argument("--basic-pitch", type=float, metavar="WEIGHT",
                   help="with --f0 auto: weight of basic-pitch's salience (trained on real recordings) beside the "
                        "tracker's own network, 0-1 (default 0.4; 0: the network alone)")
    p.add_argument("--model", help="model folder from 'sfgraph train' (default: the bundled model)")
    p.add_argument("-o", "--output", required=True, help="folder for <voice>.wav")
    p.add_argument("--synth", action="store_true", help="also write the synthesized voices to synth/<voice>.wav")
    p.add_argument("--power", type=float, default=1.0, help="mask exponent: 1 magnitude ratio (default), 2 power")
    p.add_argument("--n-fft", type=int, default=2048, help="mask STFT size in samples (hop 256)")
    p.add_argument("--low-n-fft", type=int, metavar="SAMPLES",
                   help="mask STFT size below 600 Hz, longer than --n-fft (default 4096; 0: --n-fft throughout; "
                        "see README, 'Two resolutions')")
    p.add_argument("--mask-fit", type=float, default=2.0, metavar="SECONDS",
                   help="fit the voices to the mixture before masking, with this memory in seconds "
                        "(default 2; 0: masks straight from the synthesized voices)")
    p.add_argument("--section-cents", type=float, metavar="CENTS",
                   help="widen the synthesized voices' partials by this many cents before masking, like a choir "
                        "section's (default: the model's setting, else 0; see README, 'Choir sections')")
    p.add_argument("--synth-noise", type=float, metavar="SCALE",
                   help="scale of the synthesized voices' noise part that shapes the masks: 1 as the model made "
                        "it, 0 the harmonic part alone (default: the model's setting, else 1; --f0 auto's first "
                        "pass, which only feeds the F0 refinement, always uses 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    p.add_argument("--adapt", type=float, metavar="MINUTES",
                   help="first fine-tune the model on this recording itself (its mixture and F0s, no stems) for at "
                        "most MINUTES, keep it in OUTPUT/model/ (reuse it with --model), then separate with it")
    p.add_argument("--adapt-steps", type=int, metavar="N", help="with --adapt: stop after N steps at the latest "
                                                                 "(the same seed and steps give the same model)")
    p.add_argument("--seed", type=int, default=0, help="with --adapt: seed of the segments and synthesizer noise")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
