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
    >>> top = enrich(["A", "B", "C"], list("ABCDEFGHIJ"), lib).iloc[0]
    >>> top["term"], int(top["overlap"])
    ('T1', 3)
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


RANKED_COLUMNS: list[str] = ["library", "term", "size", "nes", "p", "q", "leading_edge"]
#: Gene-label permutations of :func:`enrich_ranked` (its smallest p-value is 1 / (permutations + 1)).
RANKED_PERMUTATIONS = 2000


def enrich_ranked(
    scores: pd.Series,
    libraries: Mapping[str, Mapping[str, Iterable[str]]],
    permutations: int = RANKED_PERMUTATIONS,
    seed: int = 0,
    min_size: int = 5,
    max_size: int = 5000,
) -> pd.DataFrame:
    """Preranked gene set enrichment (GSEA) of one score per gene, e.g. a target's mean perturbation.

    Every gene counts, by its place in the ranking, where :func:`enrich` sees only a top-k list: with thousands
    of genes a top-20 list has little power. The test is gseapy's ``prerank`` (the GSEA running-sum statistic,
    its normalised score ``nes`` and gene-label permutations, single-threaded, seeded); each term is restricted
    to the scored genes first. ``p`` is the permutation p-value taken as ``(b + 1) / (permutations + 1)``, so it
    is never 0 (gseapy reports b / permutations); ``q`` is GSEA's FDR q-value (gseapy's, from the normalised
    scores of every term of the library under the permutations), likewise never below ``1 / (permutations +
    1)``: no permutation test resolves less.

    Parameters
    ----------
    scores
        One score per gene (index: genes); positive: up in the transition.
    libraries
        Library name -> term -> genes.
    permutations
        Gene-label permutations.
    seed
        Seed of the permutations.
    min_size, max_size
        Terms with fewer or more scored genes are not tested.

    Returns
    -------
    One row per tested term: ``library, term, size, nes`` (its sign is the direction), ``p, q,
    leading_edge`` (comma-separated), sorted by q, then by ``|nes|`` (larger first).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> genes = [f"G{i}" for i in range(300)]
    >>> s = pd.Series(rng.normal(size=300), index=genes); s.iloc[:15] += 3
    >>> top = enrich_ranked(s, {"lib": {"UP": genes[:15], "OTHER": genes[100:130]}}).iloc[0]
    >>> top["term"], bool(top["nes"] > 0), float(top["p"]) == 1 / 2001
    ('UP', True, True)
    """
    import contextlib
    import io
    import logging

    import gseapy

    scores = pd.Series(scores, dtype=np.float64).dropna()
    scores = scores[~scores.index.duplicated()]
    genes = set(scores.index)
    ranked = scores.sort_values(ascending=False, kind="stable")
    rows = []
    for lib_name, terms in libraries.items():
        lib = {t: [g for g in dict.fromkeys(m) if g in genes] for t, m in terms.items()}
        lib = {t: m for t, m in lib.items() if min_size <= len(m) <= max_size}
        if not lib:
            continue
        # gseapy logs through a logger of its own per call, with a handler on the stderr of that moment (not
        # through logging's tree, so its level cannot be set): its text goes to tspg's debug log instead
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            res = gseapy.prerank(rnk=ranked, gene_sets=lib, permutation_num=permutations, seed=seed, threads=1,
                                 outdir=None, min_size=min_size, max_size=max_size, verbose=False).res2d
        for line in said.getvalue().splitlines():
            if line.strip():
                logging.getLogger("tspg.library").debug("gseapy: %s", line)
        p = np.maximum(pd.to_numeric(res["NOM p-val"]).to_numpy(np.float64), 0.0)
        p = (p * permutations + 1.0) / (permutations + 1.0)
        q = np.maximum(pd.to_numeric(res["FDR q-val"]).to_numpy(np.float64), 1.0 / (permutations + 1.0))
        table = pd.DataFrame({
            "library": lib_name, "term": res["Term"].astype(str).to_numpy(),
            "size": [len(lib[t]) for t in res["Term"].astype(str)],
            "nes": pd.to_numeric(res["NES"]).to_numpy(np.float64), "p": p,
            "q": np.minimum(q, 1.0),
            "leading_edge": res["Lead_genes"].astype(str).str.replace(";", ",").to_numpy(),
        })
        rows.append(table)
    if not rows:
        return pd.DataFrame(columns=RANKED_COLUMNS)
    out = pd.concat(rows, ignore_index=True)
    order = np.lexsort((-np.abs(out["nes"].to_numpy()), out["q"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)[RANKED_COLUMNS]
