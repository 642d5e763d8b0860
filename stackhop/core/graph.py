"""The one topological sort: stable (ties keep the order nodes were given in) and linear."""

from __future__ import annotations

import heapq
from typing import Iterable


def stable_topological(nodes: list[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Nodes ordered so every edge (a, b) puts a before b; nodes on a cycle are left out."""
    position = {n: i for i, n in enumerate(nodes)}
    indeg = dict.fromkeys(nodes, 0)
    down: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in set(edges):
        down[a].append(b)
        indeg[b] += 1
    heap = [(position[n], n) for n, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, n = heapq.heappop(heap)
        order.append(n)
        for m in down[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, (position[m], m))
    return order
