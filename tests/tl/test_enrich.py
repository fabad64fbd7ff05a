import numpy as np
import pytest
from scipy.stats import hypergeom

from tspg import tl

BACKGROUND = [f"G{i:03d}" for i in range(300)]


def _library(seed=0, n_terms=40):
    rng = np.random.default_rng(seed)
    return {f"T{j:02d}": list(rng.choice(BACKGROUND, rng.integers(10, 40), replace=False)) for j in range(n_terms)}


def test_query_equal_to_a_term_ranks_that_term_first():
    lib = _library()
    for term in ("T03", "T17", "T29"):
        table = tl.enrich(lib[term], BACKGROUND, {"lib": lib})
        assert table.iloc[0]["term"] == term
        assert table.iloc[0]["overlap"] == len(lib[term]) and table.iloc[0]["q"] < 1e-6


def test_p_value_is_the_hypergeometric_tail():
    lib = {"lib": {"T": BACKGROUND[:30], "U": BACKGROUND[100:110]}}
    query = BACKGROUND[:5] + BACKGROUND[200:215]
    row = tl.enrich(query, BACKGROUND, lib).set_index("term").loc["T"]
    assert row["p"] == pytest.approx(hypergeom.sf(4, 300, 30, 20))
    assert row["term_size"] == 30 and row["query_size"] == 20 and row["background_size"] == 300
    assert row["genes"] == ",".join(sorted(BACKGROUND[:5]))


def test_background_is_the_model_genes_not_the_library_universe():
    lib = {"lib": {"T": BACKGROUND[:10] + [f"OTHER{i}" for i in range(90)]}}
    row = tl.enrich(BACKGROUND[:10], BACKGROUND, lib).iloc[0]
    assert row["term_size"] == 10  # genes outside the background do not count
    assert row["q"] < 1e-10


def test_random_queries_rarely_reach_q_below_005():
    lib = _library(seed=1)
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(50):
        query = list(rng.choice(BACKGROUND, 20, replace=False))
        table = tl.enrich(query, BACKGROUND, {"lib": lib})
        hits += int((table["q"] < 0.05).any())
    assert hits <= 5  # BH at 5%: at most a few of 50 random queries have any discovery


def test_q_values_are_bh_per_library_and_sorted():
    lib = _library(seed=3)
    query = lib["T05"][:8] + BACKGROUND[:12]
    table = tl.enrich(query, BACKGROUND, {"a": lib, "b": _library(seed=4)})
    assert set(table["library"]) == {"a", "b"}
    assert (table["q"] >= table["p"] - 1e-15).all()
    assert table["q"].is_monotonic_increasing
