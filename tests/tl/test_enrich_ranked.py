"""Preranked enrichment (GSEA) of one score per gene: the whole ranking, not a top-k list."""

import numpy as np
import pandas as pd
import pytest

from tspg.tl import RANKED_COLUMNS, enrich_ranked


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(3)
    genes = [f"G{i}" for i in range(600)]
    scores = pd.Series(rng.normal(0, 1, 600), index=genes)
    scores.iloc[:25] += 2.0  # a raised program
    scores.iloc[25:50] -= 2.0  # a lowered one
    library = {"UP_SET": genes[:25], "DOWN_SET": genes[25:50],
               **{f"RANDOM_{i}": list(rng.choice(genes, 30, replace=False)) for i in range(12)},
               "TOO_SMALL": genes[:4], "NOT_SCORED": [f"X{i}" for i in range(20)]}
    return scores, {"lib": library}


def test_planted_sets_come_first_in_their_direction(planted):
    scores, libraries = planted
    table = enrich_ranked(scores, libraries, seed=0)
    assert list(table.columns) == RANKED_COLUMNS
    up, down = table[table["nes"] > 0].iloc[0], table[table["nes"] < 0].iloc[0]
    assert up["term"] == "UP_SET" and down["term"] == "DOWN_SET"
    assert up["q"] < 1e-3 and down["q"] < 1e-3
    assert up["p"] == pytest.approx(1 / 2001)  # (b + 1) / (permutations + 1): never 0
    assert set(up["leading_edge"].split(",")) <= set(libraries["lib"]["UP_SET"])
    assert "TOO_SMALL" not in set(table["term"]) and "NOT_SCORED" not in set(table["term"])
    random = table[table["term"].str.startswith("RANDOM")]
    assert (random["q"] > 0.05).mean() >= 0.9  # sets of random genes are mostly not enriched
    pd.testing.assert_frame_equal(table, enrich_ranked(scores, libraries, seed=0))  # seeded


def test_nothing_testable_gives_an_empty_table(planted):
    scores, _ = planted
    empty = enrich_ranked(scores, {"lib": {"NONE": ["X1", "X2"]}})
    assert empty.empty and list(empty.columns) == RANKED_COLUMNS


def test_gseapys_own_log_text_stays_off_the_terminal(planted, capfd, caplog):
    scores, libraries = planted
    tied = scores.round(1)  # many ties: gseapy warns that their order is arbitrary, on its own stderr handler
    with caplog.at_level("DEBUG", logger="tspg.library"):
        table = enrich_ranked(tied, libraries, seed=0)
    assert len(table) and capfd.readouterr().err == ""
    assert "gseapy:" in caplog.text and "Duplicated values" in caplog.text
