"""One patient (n = 1): `tspg perturb RUN --perturb-data ONE.tsv` writes that sample's genes, enrichment and page."""

import hashlib
import json

import pandas as pd
import pytest
from clihelp import tspg

from tspg import TSPG
from tspg.data import make_atlas

pytestmark = pytest.mark.slow  # a whole run in the fixture


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=120, samples_per_class=30, n_markers=10, seed=9)
    root = tmp_path_factory.mktemp("patient")
    paths = atlas.write(root / "input")
    out = root / "run"
    tspg("run", "--data", paths["data"], "--labels", paths["labels"], "--target", "Liver", "--out", out,
         "--classifier-epochs", "10", "--epochs", "5", "--no-evaluate", "--no-figures", "--quiet")
    return atlas, paths, out


def test_one_sample_gets_its_own_folder_and_page_and_the_cohort_files_stay(run, tmp_path):
    atlas, paths, out = run
    heart = atlas.labels.index[atlas.labels == "Heart - Left Ventricle"][0]
    one = atlas.gem.loc[[heart]].rename(index={heart: "PATIENT 7"})
    one = one[one.columns[::-1]].assign(EXTRA_GENE=1.0)  # another gene order and a gene the model lacks
    one.to_csv(tmp_path / "one.tsv", sep="\t")
    cohort = (out / "Liver" / "perturbations.tsv").read_bytes()
    proc = tspg("perturb", out, "--target", "Liver", "--perturb-data", tmp_path / "one.tsv", "--enrich-gmt",
                paths["gene_sets"], "--quiet")
    assert "PATIENT 7" in proc.stdout and "patient.html" in proc.stdout
    # a name that is not file-safe: its safe form and a hash of it, so that "PATIENT_7" cannot take its folder
    folder = out / "Liver" / "patients" / ("PATIENT_7-" + hashlib.sha1(b"PATIENT 7").hexdigest()[:8])
    assert (out / "Liver" / "perturbations.tsv").read_bytes() == cohort  # the cohort's outputs are kept
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["sample"] == "PATIENT 7" and summary["predicted_before"] == "Heart - Left Ventricle"
    assert summary["cohort_consensus"] and len(summary["top_up"]) == 20
    top = pd.read_csv(folder / "top_genes.tsv", sep="\t")
    consensus = json.loads((out / "Liver" / "metrics.json").read_text())["consensus_up"]
    up = top[top["direction"] == "up"]
    assert (up["in_cohort"] == up["gene"].isin(consensus)).all() and (up["specific"] == ~up["in_cohort"]).all()
    probs = pd.read_csv(folder / "probabilities.tsv", sep="\t", index_col=0)
    assert probs.sum().round(5).tolist() == [1.0, 1.0]
    assert probs.loc["Liver", "after"] == pytest.approx(summary["prob_target_after"], abs=1e-6)
    genes = pd.read_csv(folder / "perturbation.tsv", sep="\t", index_col=0)
    assert len(genes) == 120 and "EXTRA_GENE" not in genes.index
    pd.testing.assert_series_equal(genes["x"].rename(None), atlas.gem.loc[heart].rename(None).astype(float),
                                   check_names=False, atol=1e-4, check_index_type=False)
    for name in ("enrichment_up.tsv", "enrichment_down.tsv", "enrichment_ranked.tsv", "heatmap.png"):
        assert (folder / name).exists(), name
    page = (folder / "patient.html").read_text()
    assert "PATIENT 7" in page and "specific to this sample" in page and "cohort consensus gene" in page
    assert "data:image/png;base64" in page  # the heatmap is embedded


def test_a_sample_without_the_model_s_genes_is_one_line(run, tmp_path):
    atlas, _, out = run
    atlas.gem.iloc[:1, :50].to_csv(tmp_path / "short.tsv", sep="\t")
    proc = tspg("perturb", out, "--target", "Liver", "--perturb-data", tmp_path / "short.tsv", "--quiet",
                check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "lacks 70 of the model's 120 genes" in lines[0], proc.stderr
    assert not (out / "Liver" / "patients" / atlas.gem.index[0]).exists()


def test_the_api_perturbs_one_sample(run):
    atlas, _, out = run
    model = TSPG.load(out, progress=False)
    one = model.perturb(atlas.gem.iloc[[0]], "Liver")
    assert one.perturbation_expr.shape == (1, 120) and one.predictions["part"].iloc[0] in {"train", "val", "test"}


def test_the_file_to_perturb_is_read_once_for_every_target(run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import tspg.workflow._run as run_module
    from tspg.cli import app

    atlas, _, out = run
    reads = []
    real = run_module.read_gem

    def counting(path, *a, **k):
        reads.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(run_module, "read_gem", counting)
    for n in (1, 4):  # the one-patient path and the cohort path
        data = tmp_path / f"n{n}.tsv"
        # sample ids of their own: the other tests of the module share this run folder and its patients/
        atlas.gem.iloc[:n].rename(index=lambda s: f"READ_ONCE_{s}").to_csv(data, sep="\t")
        res = CliRunner().invoke(app, ["perturb", str(out), "--target", "Liver", "--target", "Liver",
                                       "--perturb-data", str(data), "--no-figures", "--quiet"], prog_name="tspg")
        assert res.exit_code == 0, res.output
        assert reads.count(str(data)) == 1, reads


def test_two_samples_never_share_a_patient_folder(tmp_path):
    from tspg.workflow import patient_folder

    names = ["Patient 1", "Patient_1", "Patient/1", "..", "Pätient_1"]
    folders = [patient_folder(tmp_path, "Liver", n) for n in names]
    assert len(set(folders)) == len(names)
    assert folders[1].name == "Patient_1"  # a file-safe name is kept as it is
    assert all(f.parent == tmp_path / "Liver" / "patients" for f in folders)
    # where its folder holds another sample (a file system that does not tell case apart), it gets its hash too
    folders[1].mkdir(parents=True)
    (folders[1] / "summary.json").write_text(json.dumps({"sample": "patient_1"}))
    moved = patient_folder(tmp_path, "Liver", "Patient_1")
    assert moved != folders[1] and moved.name.startswith("Patient_1-")
    (folders[1] / "summary.json").write_text(json.dumps({"sample": "Patient_1"}))
    assert patient_folder(tmp_path, "Liver", "Patient_1") == folders[1]  # its own folder
