import numpy as np
import pandas as pd
import pytest

from tspg import tl


@pytest.fixture
def pert():
    return pd.DataFrame(
        [[0.9, 0.5, -0.7, 0.0, -0.1],
         [0.2, 0.8, -0.1, -0.9, 0.0],
         [0.0, 0.0, 0.0, 0.0, 0.0]],
        index=["s1", "s2", "s3"], columns=["A", "B", "C", "D", "E"])


def test_top_genes_per_sample_ranks_each_direction(pert):
    src = pd.Series(["X", "Y", "X"], index=pert.index)
    t = tl.top_genes_per_sample(pert, src, k=2)
    s1 = t[t["sample"] == "s1"]
    assert s1[s1.direction == "up"]["gene"].tolist() == ["A", "B"]
    assert s1[s1.direction == "down"]["gene"].tolist() == ["C", "E"]
    assert s1["rank"].tolist() == [1, 2, 1, 2]
    assert (t[t["sample"] == "s2"]["source"] == "Y").all()
    # a sample that did not move has no top genes; zero moves are never listed
    assert "s3" not in set(t["sample"])
    assert (t.loc[t.direction == "up", "perturbation"] > 0).all()
    assert (t.loc[t.direction == "down", "perturbation"] < 0).all()


def test_summary_counts_fractions_and_unique_counts(pert):
    t = tl.top_genes_per_sample(pert, k=2)
    s = tl.top_gene_summary(t, pert)
    assert s.loc["A", "count_up"] == 2 and s.loc["B", "count_up"] == 2
    assert s.loc["A", "fraction_up"] == pytest.approx(2 / 3)
    assert s.loc["C", "count_down"] == 2 and s.loc["D", "count_down"] == 1
    assert s.loc["A", "mean_perturbation"] == pytest.approx((0.9 + 0.2 + 0.0) / 3)
    assert tl.unique_top_genes(t) == {"unique_top_up": 2, "unique_top_down": 3}
    # ties in count: the larger mean move wins (A: 0.367, B: 0.433)
    assert tl.consensus_genes(s, "up", 1) == ["B"]
    assert tl.consensus_genes(s, "up", 2) == ["B", "A"]
    assert tl.consensus_genes(s, "down", 1) == ["C"]


def test_genes_equal_in_count_and_mean_move_keep_the_matrix_order():
    # Z and A move alike in every sample, and so do Y and C: only the order of the columns can separate them
    pert = pd.DataFrame([[0.5, 0.5, 0.2, -0.4, -0.4], [0.3, 0.3, -0.1, -0.6, -0.6]], index=["s1", "s2"],
                        columns=["Z", "A", "B", "Y", "C"])
    t = tl.top_genes_per_sample(pert, k=2)
    assert t["gene"].tolist() == ["Z", "A", "Y", "C"] * 2
    s = tl.top_gene_summary(t, pert)
    assert list(s.index) == ["Z", "A", "B", "Y", "C"]
    assert tl.consensus_genes(s, "up", 1) == ["Z"] and tl.consensus_genes(s, "up", 5) == ["Z", "A"]
    assert tl.consensus_genes(s, "down", 1) == ["Y"] and tl.consensus_genes(s, "down", 5) == ["Y", "C"]
    # the same genes in the other column order: the other one comes first, whatever the names
    rev = pert[pert.columns[::-1]]
    s_rev = tl.top_gene_summary(tl.top_genes_per_sample(rev, k=2), rev)
    assert tl.consensus_genes(s_rev, "up", 5) == ["A", "Z"] and tl.consensus_genes(s_rev, "down", 5) == ["C", "Y"]
    # consensus_genes itself keeps the order of the summary's rows for such genes
    assert tl.consensus_genes(s.iloc[::-1], "up", 5) == ["A", "Z"]


def test_identical_perturbations_give_one_consistent_list():
    rng = np.random.default_rng(0)
    row = rng.normal(size=50)
    pert = pd.DataFrame(np.tile(row, (7, 1)), columns=[f"G{i}" for i in range(50)])
    t = tl.top_genes_per_sample(pert, k=5)
    assert tl.unique_top_genes(t) == {"unique_top_up": 5, "unique_top_down": 5}


def test_by_source_table(pert):
    src = pd.Series(["X", "Y", "X"], index=pert.index)
    t = tl.top_genes_per_sample(pert, src, k=1)
    by = tl.top_gene_summary_by_source(t, pert, src)
    assert set(by["source"]) == {"X", "Y"}
    x = by[by["source"] == "X"].set_index("gene")
    assert x.loc["A", "count_up"] == 1 and x.loc["A", "fraction_up"] == pytest.approx(0.5)
    assert (by.loc[by["source"] == "X", "n_samples"] == 2).all()
