"""A picture of a graph: nodes in columns by depth, connections as labelled arrows."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sfgraph.graph.build import BuiltGraph


def draw_graph(graph: BuiltGraph, path: Path) -> None:
    """Write a PNG or SVG (by ``path``'s suffix) of ``graph``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    depth: dict[str, int] = {}
    for node_id in graph.order:
        parents = [c.src for c in graph.connections if c.dst == node_id]
        depth[node_id] = 1 + max((depth[p] for p in parents), default=-1)
    columns: dict[int, list[str]] = {}
    for node_id in graph.order:
        columns.setdefault(depth[node_id], []).append(node_id)
    height = max(len(col) for col in columns.values())
    position = {}
    for d, col in columns.items():
        for i, node_id in enumerate(col):
            position[node_id] = (d * 3.2, (len(col) - 1) / 2 - i)

    fig, ax = plt.subplots(figsize=(2.2 + 3.2 * len(columns) * 0.9, 1.2 + 1.4 * height))
    box_w, box_h = 2.2, 0.8
    # one arrow per pair of nodes, its ports listed on one label; an arrow that skips
    # columns bows upwards, so that it passes over the boxes between instead of through them
    pairs: dict[tuple[str, str], list[str]] = {}
    top = max(y for _, y in position.values()) + 1
    for c in graph.connections:
        pairs.setdefault((c.src, c.dst), []).append(f"{c.src_port}→{c.dst_port}")
    for (src, dst), ports in pairs.items():
        (x0, y0), (x1, y1) = position[src], position[dst]
        start, end = np.array([x0 + box_w / 2, y0]), np.array([x1 - box_w / 2, y1])
        bow = 1.2 * min(depth[dst] - depth[src] - 1, 2)
        control = (start + end) / 2 + [0.0, bow]
        ax.add_patch(FancyArrowPatch(path=MplPath([start, control, end], [MplPath.MOVETO, MplPath.CURVE3,
                                                                           MplPath.CURVE3]),
                                     arrowstyle="->", mutation_scale=10, color="#555", lw=1.2))
        middle = 0.25 * start + 0.5 * control + 0.25 * end  # the curve's midpoint
        top = max(top, middle[1] + 0.3 * len(ports))
        ax.text(middle[0], middle[1] + 0.08, "\n".join(ports), ha="center", va="bottom", fontsize=7,
                color="#333", bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for node_id, (x, y) in position.items():
        node = graph.nodes[node_id]
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.05", fc="#e8f0fb", ec="#3a6ea5"))
        latency = f"\n{node.latency} smp latency" if node.latency else ""
        ax.text(x, y, f"{node_id}\n({node.type_name}){latency}", ha="center", va="center", fontsize=8)
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    ax.set_xlim(min(xs) - box_w, max(xs) + box_w)
    ax.set_ylim(min(ys) - 1, top)
    ax.set_title(f"{graph.decl.name}  ({graph.context.sample_rate} Hz, block {graph.context.block_size})")
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
