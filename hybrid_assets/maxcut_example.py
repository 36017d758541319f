"""The bundled example of max-cut: a weighted graph of 12 nodes, generated with a fixed seed (no
download), like the portfolio's example returns: a ring (so the graph is connected) plus random
chords, each with a weight in [0.5, 2.0] (one decimal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybrid_resources.data.paths import atomic_write

EXAMPLE_GRAPH_FILE_NAME = "example_graph.csv"
EXAMPLE_SEED = 20240602


def example_edges(*, nodes: int = 12, chord_probability: float = 0.3, seed: int = EXAMPLE_SEED) -> list[tuple[str, str, float]]:
    """The example's edges ``(u, v, weight)``, nodes ``v00`` ... ``v11``."""
    rng = np.random.default_rng(seed)
    pairs = [(i, (i + 1) % nodes) for i in range(nodes)]
    pairs += [(i, j) for i in range(nodes) for j in range(i + 2, nodes)
              if (i, j) != (0, nodes - 1) and rng.random() < chord_probability]
    weights = np.round(rng.uniform(0.5, 2.0, len(pairs)), 1)
    return [(f"v{i:02d}", f"v{j:02d}", float(w)) for (i, j), w in zip(pairs, weights)]


def write_example_graph(path: Path) -> Path:
    """The example graph as a CSV edge list (``u,v,weight``), written whole (never seen half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "u,v,weight\n" + "".join(f"{u},{v},{w}\n" for u, v, w in example_edges())
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return path
