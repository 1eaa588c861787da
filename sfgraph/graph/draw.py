"""A picture of a graph: nodes in columns by depth, connections as labelled arrows."""
from __future__ import annotations

from pathlib import Path

from sfgraph.graph.build import BuiltGraph


def draw_graph(graph: BuiltGraph, path: Path) -> None:
    """Write a PNG or SVG (by ``path``'s suffix) of ``graph``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

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
    for c in graph.connections:
        (x0, y0), (x1, y1) = position[c.src], position[c.dst]
        ax.annotate("", xy=(x1 - box_w / 2, y1), xytext=(x0 + box_w / 2, y0),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.1, f"{c.src_port}→{c.dst_port}", ha="center", va="bottom",
                fontsize=7, color="#333")
    for node_id, (x, y) in position.items():
        node = graph.nodes[node_id]
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.05", fc="#e8f0fb", ec="#3a6ea5"))
        latency = f"\n{node.latency} smp latency" if node.latency else ""
        ax.text(x, y, f"{node_id}\n({node.type_name}){latency}", ha="center", va="center", fontsize=8)
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    ax.set_xlim(min(xs) - box_w, max(xs) + box_w)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.set_title(f"{graph.decl.name}  ({graph.context.sample_rate} Hz, block {graph.context.block_size})")
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
