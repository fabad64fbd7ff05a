"""Offline over-representation analysis: hypergeometric test against the model's genes, BH q-values per library."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

COLUMNS = ["library", "term", "overlap", "term_size", "query_size", "background_size", "p", "q", "genes"]


def enrich(
    query: Iterable[str],
    background: Iterable[str],
    libraries: Mapping[str, Mapping[str, Iterable[str]]],
) -> pd.DataFrame:
    """Hypergeometric over-representation of ``query`` in every term of every library.

    Every term is restricted to the background first (the genes the model was trained on, never the library's
    own gene universe); terms with no background gene are not tested. Per library, q-values are
    Benjamini-Hochberg (``scipy.stats.false_discovery_control``) over its tested terms.

    Parameters
    ----------
    query
        The genes of interest (those outside the background are ignored).
    background
        The gene universe.
    libraries
        Library name -> term -> genes (e.g. from :func:`tspg.data.read_gmt`).

    Returns
    -------
    One row per tested term with at least one query gene: ``library, term, overlap, term_size (in background),
    query_size, background_size, p, q, genes`` (overlapping genes, comma-separated), sorted by q then p.

    Examples
    --------
    >>> lib = {"lib": {"T1": ["A", "B", "C"], "T2": ["D", "E"]}}
    >>> enrich(["A", "B", "C"], list("ABCDEFGHIJ"), lib).iloc[0][["term", "overlap"]].tolist()
    ['T1', 3]
    """
    from scipy.stats import false_discovery_control, hypergeom

    universe = list(dict.fromkeys(background))
    bg = set(universe)
    q_set = [g for g in dict.fromkeys(query) if g in bg]
    q_lookup = set(q_set)
    big_n, n = len(universe), len(q_set)
    rows = []
    for lib_name, terms in libraries.items():
        names, sizes, overlaps, genes = [], [], [], []
        for term, members in terms.items():
            in_bg = [g for g in dict.fromkeys(members) if g in bg]
            if not in_bg:
                continue
            hit = [g for g in in_bg if g in q_lookup]
            names.append(term)
            sizes.append(len(in_bg))
            overlaps.append(len(hit))
            genes.append(",".join(sorted(hit)))
        if not names:
            continue
        sizes_a, overlaps_a = np.asarray(sizes), np.asarray(overlaps)
        p = hypergeom.sf(overlaps_a - 1, big_n, sizes_a, n) if n else np.ones(len(names))
        p = np.clip(p, 0.0, 1.0)
        q = false_discovery_control(p, method="bh")
        for i in np.flatnonzero(overlaps_a > 0):
            rows.append((lib_name, names[i], int(overlaps_a[i]), int(sizes_a[i]), n, big_n, float(p[i]), float(q[i]),
                         genes[i]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(["q", "p", "library", "term"], kind="stable").reset_index(drop=True)
