"""On the demo atlas, whose planted markers are known, TSPG's top genes and enrichment find them (defaults)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tspg.data import make_atlas

pytestmark = pytest.mark.slow


def test_default_run_recovers_the_planted_liver_markers(tmp_path):
    atlas = make_atlas(seed=0)  # the demo's atlas
    paths = atlas.write(tmp_path / "input")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tspg.cli", "run", "--data", str(paths["data"]), "--labels",
                           str(paths["labels"]), "--target", "Liver", "--out", str(out), "--enrich-gmt",
                           str(paths["gene_sets"]), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((out / "Liver" / "metrics.json").read_text())
    assert m["perturbation_accuracy"] >= 0.95
    planted_up = set(atlas.markers["Liver"]["up"])
    assert len(planted_up & set(m["consensus_up"])) >= 15
    enr = pd.read_csv(out / "Liver" / "enrichment_up.tsv", sep="\t")
    assert enr.iloc[0]["term"] == "LIVER_UP" and enr.iloc[0]["q"] < 1e-4
    down = pd.read_csv(out / "Liver" / "enrichment_down.tsv", sep="\t")
    # the down list: the planted LIVER_DOWN set among the two top terms (a liver-linked co-expressed program can
    # rank first, depending on float summation order, i.e. the thread count)
    top2 = down.head(2).set_index("term")
    assert "LIVER_DOWN" in top2.index and top2.loc["LIVER_DOWN", "q"] < 1e-4
    # with no extra flags the run also evaluates, draws and reports
    assert {"tsne.png", "panel.png", "history.png"} <= {p.name for p in (out / "Liver" / "plots").iterdir()}
    ev = pd.read_csv(out / "Liver" / "evaluation.tsv", sep="\t")
    tspg_all = ev[(ev["method"] == "tspg") & (ev["source"] == "all")].iloc[0]
    assert tspg_all["success_f"] >= 0.95 and tspg_all["success_logreg"] >= 0.9
    page = (out / "report.html").read_text()
    assert "LIVER_UP" in page and "TSPG against baselines" in page
    assert "held-out: called the target by f" in proc.stdout  # the headline figures are printed
