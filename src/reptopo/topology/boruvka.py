"""Borůvka minimum spanning trees on torch (CUDA, or CPU tensors): O(log n) vectorised passes.

Used by the dense engine on a stored matrix (:mod:`.mst`) and by the tiled engine on row blocks
computed on the fly (:mod:`.tiled`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["boruvka_torch"]


# Temporary (rows x n) float64 block of one Borůvka pass, in elements: 2**25 = 256 MiB, small
# next to the N x N matrix it is cut from.
_BORUVKA_BLOCK_ELEMS = 2**25


def boruvka_torch(D, idx=None, block_elems: int = _BORUVKA_BLOCK_ELEMS, rows=None, n=None):
    """Borůvka MST of ``D[idx][:, idx]`` on ``D.device``: O(log n) vectorised passes.

    Prim needs n sequential steps, which on a GPU means n rounds of tiny kernel launches (slower
    than the numba loop on CPU). Borůvka instead, in each pass, finds for every component its
    cheapest edge to another component with row-wise minima over the whole block (one masked
    min per row block), then merges along those edges; every pass at least halves the number
    of components, so a tree on n points takes at most ceil(log2 n) passes, each a handful of
    kernels and one small host transfer.

    Ties are broken by a strict total order on edges, (weight, min(i, j), max(i, j)), which
    makes the minimum spanning tree unique, so the edges chosen in one pass never close a cycle
    (the classic Borůvka pitfall with equal weights, e.g. duplicate points at distance 0).

    Parameters
    ----------
    D : torch.Tensor, float64, shape (N, N)
        Exactly symmetric distance matrix (see :func:`~.distances.symmetrize_upper_`); only rows
        ``idx`` and columns ``idx`` are read.
    idx : torch.Tensor of int64 on ``D.device``, shape (n,), optional
        Vertices of the sub-graph (global row numbers in ``D``); ``None``: all of ``D``.
    block_elems : int
        Rows are processed in blocks of ``block_elems // n`` rows, so the temporary masked
        (rows x n) block stays small next to ``D``.
    rows : callable, optional
        ``rows(start, stop)`` -> a fresh (stop - start, n) tensor of distances, used instead of
        ``D`` (which is then ``None``), so that no n x n matrix exists (the tiled engine).
    n : int, optional
        Number of points when ``rows`` is given.

    Returns
    -------
    parent, child : np.ndarray of intp, shape (n - 1,)
        Tree edges as *local* positions in ``idx`` (or rows of ``D``), in the order the passes
        add them; ``parent < child`` for every edge.
    """
    import torch
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if rows is None:
        dev, dtype = D.device, D.dtype
        n = D.shape[0] if idx is None else int(idx.shape[0])
    else:
        probe = rows(0, 1)
        dev, dtype = probe.device, probe.dtype
        del probe
    if n < 2:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    g = None if idx is None else idx.to(device=dev, dtype=torch.int64)
    rows_per_block = max(1, block_elems // n)
    local = torch.arange(n, device=dev)
    no_edge = torch.iinfo(torch.int64).max
    comp = np.arange(n, dtype=np.int64)  # component label (0..n_comp-1) of each vertex, on the host
    found: list[np.ndarray] = []  # edge codes a * n + b, a < b, one array per pass
    n_comp = n
    while n_comp > 1:
        comp_dev = torch.from_numpy(comp).to(dev)
        # Cheapest edge out of each vertex's component: weight, and the smallest partner index
        # among equal weights (argmin returns the first minimum), which is the (a, b)-smallest.
        best_w = torch.empty(n, dtype=dtype, device=dev)
        best_j = torch.empty(n, dtype=torch.int64, device=dev)
        for start in range(0, n, rows_per_block):
            stop = min(start + rows_per_block, n)
            same = comp_dev[start:stop, None] == comp_dev[None, :]
            if rows is not None:
                block = rows(start, stop)
                block.masked_fill_(same, float("inf"))
            elif g is None:
                block = D[start:stop].masked_fill(same, float("inf"))  # a copy; D is untouched
            else:
                # One gather straight to rows x n (index_select by rows first would build a
                # rows x N block), then masked in place.
                block = D[g[start:stop, None], g[None, :]]
                block.masked_fill_(same, float("inf"))
            j = torch.argmin(block, dim=1)
            best_j[start:stop] = j
            best_w[start:stop] = block.gather(1, j[:, None]).squeeze(1)
            del block, same
        # Per component: the minimum weight, then among its vertices attaining it the smallest
        # code (min(i, j), max(i, j)); labels are vertex numbers, so n slots suffice.
        comp_w = torch.full((n,), float("inf"), dtype=dtype, device=dev)
        comp_w.scatter_reduce_(0, comp_dev, best_w, reduce="amin")
        if not bool(torch.isfinite(comp_w[comp_dev]).all()):
            # Masked entries are inf too, so an inf distance would pass for "no edge".
            raise ValueError(
                "the distance matrix has inf entries (squared norms overflow float64 for "
                "coordinates beyond ~1e154): rescale X"
            )
        a = torch.minimum(local, best_j)
        b = torch.maximum(local, best_j)
        code = torch.where(best_w == comp_w[comp_dev], a * n + b, no_edge)
        comp_code = torch.full((n,), no_edge, dtype=torch.int64, device=dev)
        comp_code.scatter_reduce_(0, comp_dev, code, reduce="amin")
        picked = comp_code != no_edge
        codes = comp_code[picked].cpu().numpy()
        weights = comp_w[picked].cpu().numpy()
        codes, first = np.unique(codes, return_index=True)
        weights = weights[first]
        ea, eb = codes // n, codes % n
        if rows is not None:
            # Row blocks computed apart may round one pair's length differently in its two
            # rows, so the picks could close a cycle among near-equal lengths: join them in
            # (length, code) order and skip an edge whose ends are already joined.
            keep = _acyclic(comp[ea], comp[eb], np.lexsort((codes, weights)), n_comp)
            codes, ea, eb = codes[keep], ea[keep], eb[keep]
        found.append(codes)
        # Merge the components along the new edges: a small graph on the labels 0..n_comp-1
        # (connected_components numbers its output labels the same compact way).
        graph = coo_matrix((np.ones(codes.size), (comp[ea], comp[eb])), shape=(n_comp, n_comp))
        n_comp, merged = connected_components(graph, directed=False)
        comp = merged[comp].astype(np.int64, copy=False)
    codes = np.concatenate(found)
    if codes.size != n - 1:  # a cycle: only possible if D is not exactly symmetric
        raise RuntimeError(
            f"Borůvka returned {codes.size} edges for {n} points: D must be exactly symmetric"
        )
    return (codes // n).astype(np.intp), (codes % n).astype(np.intp)


def _acyclic(ca: np.ndarray, cb: np.ndarray, order: np.ndarray, n_comp: int) -> np.ndarray:
    """Mask of the edges (component ca[e] - cb[e]) that Kruskal keeps when it takes them in
    ``order``: an edge whose ends are already joined is dropped."""
    keep = np.zeros(ca.size, dtype=np.bool_)
    parent = np.arange(n_comp, dtype=np.int64)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for e in order:
        ra, rb = find(int(ca[e])), find(int(cb[e]))
        keep[e] = ra != rb
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return keep
