"""``tspg sweep``: one run per gene set with both engines, summary.tsv and sweep.html, kill and rerun."""

import os
import signal
import subprocess
import sys
import time
from functools import partial

import click
import pandas as pd
import pytest
from clihelp import tspg as _tspg

from tspg._names import CLASSIFIER_WEIGHTS, MANIFEST, target_dirname
from tspg.data import InputError, make_atlas
from tspg.workflow._sweep import (
    PARENT_VAR,
    PLAN,
    ROWS,
    SUMMARY,
    SUMMARY_COLUMNS,
    SWEEP_HTML,
    gpu_slots,
    plan_sweep,
    read_plan,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and file locks")

tspg = partial(_tspg, check=False)
TARGETS = ["Liver", "Lung"]
SETTINGS = ["--classifier-epochs", "4", "--epochs", "4", "--no-figures", "--seed", "2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=60, samples_per_class=14, n_markers=3, n_programs=3, program_size=8,
                       seed=4)
    paths = atlas.write(tmp_path_factory.mktemp("sweep_inputs"))
    genes = pd.read_csv(paths["data"], sep="\t", index_col=0, nrows=1).columns.tolist()
    sets = paths["data"].parent / "sets.gmt"
    sets.write_text("SET_A\tna\t" + "\t".join(genes[:30]) + "\n"
                    + "SET_B\tna\t" + "\t".join([*genes[20:55], "NOT_A_GENE"]) + "\n")
    return {**paths, "sets": sets}


def _sweep_args(inputs, out, *extra):
    args = ["sweep", "--data", inputs["data"], "--labels", inputs["labels"], "--gene-sets", inputs["sets"],
            "--all-gene-sets", "--out", out, "--enrich-gmt", inputs["gene_sets"], *SETTINGS, *extra]
    return args + [a for t in TARGETS for a in ("--target", t)]


@pytest.fixture(scope="module")
def local_sweep(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "local"
    r = tspg(*_sweep_args(inputs, out))
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.mark.slow
def test_local_sweep_writes_a_run_per_gene_set_and_the_summary(local_sweep):
    out, r = local_sweep
    assert "2 of 2 gene set(s) finished" in r.stdout
    for d in ("SET_A", "SET_B"):
        assert (out / d / MANIFEST).is_file() and (out / d / "report.html").is_file() and (out / d / ROWS).is_file()
        assert (out / "logs" / f"{d}.log").is_file()
    table = pd.read_csv(out / SUMMARY, sep="\t")
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert table[["gene_set", "target"]].values.tolist() == [["SET_A", "Liver"], ["SET_A", "Lung"],
                                                             ["SET_B", "Liver"], ["SET_B", "Lung"]]
    assert table["genes_used"].tolist() == [30, 30, 35, 35]
    assert table["genes_missing"].tolist() == [0, 0, 1, 1]  # NOT_A_GENE
    # every figure comes from its run folder's own files
    for rec in table.to_dict("records"):
        metrics = pd.read_json(out / rec["gene_set"] / rec["target"] / "metrics.json", typ="series")
        assert rec["perturbation_accuracy"] == pytest.approx(metrics["perturbation_accuracy"])
        ev = pd.read_csv(out / rec["gene_set"] / rec["target"] / "evaluation.tsv", sep="\t")
        row = ev[(ev["method"] == "tspg") & (ev["source"] == "all")].iloc[0]
        assert rec["energy_distance"] == pytest.approx(row["energy_distance"], rel=1e-6)
        assert rec["c2st_auc"] == pytest.approx(row["c2st_auc"], rel=1e-6)
        assert 0 < rec["energy_distance_floor"] and isinstance(rec["best_baseline"], str)
        assert rec["report"] == f"{rec['gene_set']}/report.html"
    page = (out / SWEEP_HTML).read_text()
    assert '<a href="SET_A/report.html">SET_A</a>' in page and "table.sortable" in page
    assert page.count("<tr>") == 1 + len(table)


@pytest.mark.slow
def test_snakemake_engine_writes_the_same_summary(inputs, local_sweep, tmp_path):
    pytest.importorskip("snakemake")
    out = tmp_path / "smk"
    r = tspg(*_sweep_args(inputs, out, "--engine", "snakemake"))
    assert r.returncode == 0, r.stderr + (out / "logs" / "snakemake.log").read_text()
    assert (out / SUMMARY).read_text() == (local_sweep[0] / SUMMARY).read_text()
    assert "Rule: gene_set" in (out / "logs" / "snakemake.log").read_text()


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before the point to kill it at: {proc.stderr.read()}"
        assert time.monotonic() < end, "timed out waiting for the point to kill at"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_sweep_run_again_skips_finished_gene_sets_and_resumes_the_rest(inputs, local_sweep, tmp_path):
    out = tmp_path / "killed"
    args = [str(a) for a in _sweep_args(inputs, out)]
    proc = subprocess.Popen([sys.executable, "-m", "tspg", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # killed (SIGKILL: nothing of the sweep runs after it) while the second gene set is half-written
    _wait_for(lambda: (out / "SET_B" / CLASSIFIER_WEIGHTS).is_file(), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert (out / "SET_A" / ROWS).is_file() and not (out / "SET_B" / ROWS).is_file()
    first = (out / "SET_A" / CLASSIFIER_WEIGHTS).stat().st_mtime_ns
    time.sleep(2.0)  # the orphaned job notices its sweep is gone and ends
    assert subprocess.run(["pgrep", "-f", f"sweep-job {out}"], capture_output=True).returncode == 1
    r = tspg(*_sweep_args(inputs, out))
    assert r.returncode == 0, r.stderr
    assert "1 of 2 gene set(s) finished already" in r.stderr
    assert (out / "SET_A" / CLASSIFIER_WEIGHTS).stat().st_mtime_ns == first  # never redone
    assert "resuming" in (out / "logs" / "SET_B.log").read_text()
    assert (out / SUMMARY).read_text() == (local_sweep[0] / SUMMARY).read_text()


# ---------------------------------------------------------------- fast: the plan, its checks, the job's options
def test_plan_checks_gene_sets_and_refuses_another_sweeps_folder(inputs, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(InputError, match="not in sets.gmt: NOPE"):
        plan_sweep(out, inputs["sets"], ["SET_A", "NOPE"], False, ["Liver"], [])
    with pytest.raises(InputError, match="--gene-set NAME"):
        plan_sweep(out, inputs["sets"], [], False, ["Liver"], [])
    with pytest.raises(InputError, match="not both"):
        plan_sweep(out, inputs["sets"], ["SET_A"], True, ["Liver"], [])
    assert not out.exists()  # nothing written for a refused plan
    plan = plan_sweep(out, inputs["sets"], ["SET_B", "SET_A", "SET_B"], False, ["Liver"], ["--epochs", "2"], jobs=2)
    assert plan.gene_sets == ["SET_B", "SET_A"] and plan.dirs == ["SET_B", "SET_A"]
    assert read_plan(out) == plan and plan.threads >= 1
    # the same options with more gene sets continue it; other options are refused, --force replaces
    assert plan_sweep(out, inputs["sets"], [], True, ["Liver"], ["--epochs", "2"]).gene_sets == ["SET_A", "SET_B"]
    (out / "SET_A").mkdir()
    with pytest.raises(InputError, match="other options or targets"):
        plan_sweep(out, inputs["sets"], [], True, ["Liver"], ["--epochs", "3"])
    from tspg.workflow import RunLockedError, run_lock

    with run_lock(out, "tspg sweep"), pytest.raises(RunLockedError):  # a running sweep's folder is not removed
        plan_sweep(out, inputs["sets"], [], True, ["Liver"], ["--epochs", "3"], force=True)
    assert (out / "SET_A").exists()
    plan_sweep(out, inputs["sets"], [], True, ["Liver"], ["--epochs", "3"], force=True)
    assert not (out / "SET_A").exists() and read_plan(out).run_args == ["--epochs", "3"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no sweep"):
        plan_sweep(other, inputs["sets"], [], True, ["Liver"], [])


def test_gene_sets_sharing_a_folder_name_are_refused(tmp_path):
    gmt = tmp_path / "g.gmt"
    gmt.write_text("A B\tna\tG1\tG2\nA_B\tna\tG2\tG3\n")
    with pytest.raises(InputError, match="share the folder 'A_B'"):
        plan_sweep(tmp_path / "s", gmt, [], True, ["x"], [])


def test_gpus_are_dealt_out_to_the_parallel_jobs():
    assert gpu_slots(3, 1, 2) == ["0", "1", "0"]
    assert gpu_slots(2, 0, 4) == [None, None]
    assert gpu_slots(2, 1, 1) == [None, None]  # one GPU: every job sees it


def test_the_options_given_are_passed_to_every_run_with_absolute_paths(inputs, tmp_path, monkeypatch):
    from tspg.cli import _run_args, sweep_cmd

    monkeypatch.chdir(inputs["data"].parent)
    args = ["--data", inputs["data"].name, "--labels", "labels.tsv", "--gene-sets", "sets.gmt", "--all-gene-sets",
            "--target", "Liver", "--out", str(tmp_path / "o"), "--epochs", "7", "--no-figures", "--enrich-gmt",
            "gene_sets.gmt", "--enrich-gmt", "gene_sets.gmt", "--jobs", "2"]
    ctx = sweep_cmd.make_context("sweep", args)
    run = _run_args(ctx)
    d = str(inputs["data"].parent.resolve())
    assert run == ["--data", f"{d}/gem.tsv", "--labels", f"{d}/labels.tsv", "--epochs", "7", "--enrich-gmt",
                   f"{d}/gene_sets.gmt", "--enrich-gmt", f"{d}/gene_sets.gmt", "--no-figures"]
    # each is an option of tspg run, which parses them as the sweep's job does
    from tspg.cli import run_cmd

    run_cmd.make_context("run", [*run, "--target", "Liver", "--out", "x"])
    with pytest.raises(click.UsageError):  # (the check works: a sweep-only option is not one)
        run_cmd.make_context("run", [*run, "--jobs", "2", "--target", "Liver", "--out", "x"])


def test_sweep_input_errors_are_one_line_and_exit_2(inputs, tmp_path):
    base = ["sweep", "--data", inputs["data"], "--labels", inputs["labels"], "--target", "Liver", "--out",
            tmp_path / "o"]
    cases = [
        ([], "--gene-sets GMT"),
        (["--gene-sets", inputs["sets"], "--gene-set", "NOPE"], "not in sets.gmt: NOPE"),
        (["--gene-sets", inputs["sets"], "--all-gene-sets", "--profile", tmp_path], "--engine snakemake"),
        (["--gene-sets", inputs["sets"], "--all-gene-sets", "--target", "Kidney"], "Kidney"),
        (["--gene-sets", inputs["sets"], "--all-gene-sets", "--epochs", "0"], "epochs"),
        # data-level problems: once, before any job (each job used to fail on its own, with exit code 1)
        (["--gene-sets", inputs["sets"], "--all-gene-sets", "--labels", tmp_path / "few.tsv"], "have no label"),
    ]
    labels = pd.read_csv(inputs["labels"], sep="\t", header=None, dtype=str)
    labels.iloc[1:].to_csv(tmp_path / "few.tsv", sep="\t", header=False, index=False)
    for extra, text in cases:
        r = tspg(*base, *extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert text in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert not (tmp_path / "o").exists()


def test_a_sweep_reads_cls_labels_as_a_run_does(inputs, tmp_path):
    labels = pd.read_csv(inputs["labels"], sep="\t", header=None, index_col=0, dtype=str).iloc[:, 0]
    samples = pd.read_csv(inputs["data"], sep="\t", usecols=[0], dtype=str).iloc[:, 0]
    classes = sorted(labels.unique())
    cls = tmp_path / "labels.cls"
    cls.write_text(f"{len(samples)} {len(classes)} 1\n# {' '.join(c.replace(' ', '_') for c in classes)}\n"
                   + " ".join(labels.loc[samples].str.replace(" ", "_")) + "\n")
    r = tspg("sweep", "--data", inputs["data"], "--labels", cls, "--gene-sets", inputs["sets"], "--gene-set",
             "SET_A", "--target", "Liver", "--out", tmp_path / "o", *SETTINGS, "--epochs", "1", "--no-evaluate")
    assert r.returncode == 0, r.stderr  # refused before: a .cls file needs the GEM's sample order
    assert (tmp_path / "o" / "SET_A" / MANIFEST).exists()


def test_a_problem_of_one_gene_set_fails_only_its_job(inputs, tmp_path):
    gem = pd.read_csv(inputs["data"], sep="\t", index_col=0)
    gem.iloc[0, 40] = float("nan")  # a gene of SET_B only (SET_A has the first 30)
    gem.to_csv(tmp_path / "gem.tsv", sep="\t")
    r = tspg("sweep", "--data", tmp_path / "gem.tsv", "--labels", inputs["labels"], "--gene-sets", inputs["sets"],
             "--gene-set", "SET_B", "--gene-set", "SET_A", "--target", "Liver", "--out", tmp_path / "o", *SETTINGS,
             "--epochs", "1", "--no-evaluate")
    assert r.returncode == 1 and "SET_B failed (exit 2)" in r.stderr and "missing or infinite" in r.stderr
    assert (tmp_path / "o" / "SET_A" / ROWS).is_file() and not (tmp_path / "o" / "SET_B" / ROWS).exists()


def test_sweep_job_names_an_unknown_folder(inputs, tmp_path):
    plan_sweep(tmp_path / "s", inputs["sets"], [], True, ["Liver"], [])
    r = tspg("sweep-job", tmp_path / "s", "--dir", "SET_C")
    assert r.returncode == 2 and "No gene set folder 'SET_C'" in r.stderr
    assert (tmp_path / "s" / PLAN).is_file()


def test_a_job_ends_when_its_sweep_is_gone(tmp_path):
    script = ("import time; from tspg.workflow._sweep import end_with_parent; end_with_parent(); time.sleep(30)")
    # the job's recorded parent is not its parent (the sweep is gone): it ends within a second
    env = {**os.environ, PARENT_VAR: "1" if os.getppid() != 1 else "2"}
    began = time.monotonic()
    r = subprocess.run([sys.executable, "-c", script], env=env, timeout=20)
    assert r.returncode == -signal.SIGTERM and time.monotonic() - began < 10
    # without the variable (a Snakemake job, or tspg run) nothing watches
    r = subprocess.run([sys.executable, "-c", script.replace("30", "0.5")], env={k: v for k, v in os.environ.items()
                                                                                 if k != PARENT_VAR}, timeout=20)
    assert r.returncode == 0


def test_target_all_means_every_class_unless_a_class_is_named_all():
    from tspg.data import resolve_targets

    assert resolve_targets(["all"], ["A", "B"]) == ["A", "B"]
    assert resolve_targets(["B", "all"], ["A", "B"]) == ["B", "A"]
    assert resolve_targets(["all"], ["all", "B"]) == ["all"]
    assert resolve_targets(["A", "A"], ["A"]) == ["A"]


def test_run_target_all_trains_every_class(inputs, tmp_path):
    out = tmp_path / "r"
    r = tspg("run", "--data", inputs["data"], "--labels", inputs["labels"], "--target", "all", "--out", out,
             "--classifier-epochs", "2", "--epochs", "1", "--no-figures", "--no-evaluate", "--quiet")
    assert r.returncode == 0, r.stderr
    classes = sorted(pd.read_csv(inputs["labels"], sep="\t", header=None)[1].unique())
    assert [line.split("'")[1] for line in r.stdout.splitlines() if line.startswith("target ")] == classes
    for c in classes:
        assert (out / target_dirname(c) / "metrics.json").is_file()
