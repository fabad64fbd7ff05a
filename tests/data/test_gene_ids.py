"""Gene identifiers: GTEx-style GCT files (versioned Ensembl IDs in Name, symbols in Description) and GMTs."""

import json
import logging
from functools import partial

import numpy as np
import pandas as pd
import pytest
from clihelp import tspg as _tspg

from tspg.data import InputError, load_dataset, make_atlas, read_gem
from tspg.data._ids import id_style

tspg = partial(_tspg, check=False)


def write_gct(path, gem: pd.DataFrame, names: list[str], descriptions: list[str]) -> None:
    """``gem`` (samples x genes) as a GCT v1.2 with the given Name and Description per gene."""
    lines = ["#1.2", f"{gem.shape[1]}\t{gem.shape[0]}", "\t".join(["Name", "Description", *gem.index])]
    for j, (n, d) in enumerate(zip(names, descriptions, strict=True)):
        lines.append("\t".join([n, d, *(f"{v:g}" for v in gem.iloc[:, j])]))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def gtex_like(tmp_path_factory):
    atlas = make_atlas(n_classes=3, n_genes=120, samples_per_class=20, n_markers=10, seed=8)
    gem = atlas.gem.round(3)
    symbols = list(gem.columns)
    descriptions = symbols[:-2] + [symbols[0], symbols[1]]  # the last two rows repeat the first two symbols
    names = [f"ENSG{100000 + j:011d}.{1 + j % 7}" for j in range(len(symbols))]
    folder = tmp_path_factory.mktemp("gtex")
    write_gct(folder / "gem.gct", gem, names, descriptions)
    # the general reader's path (a quote makes the fast reader step aside): same result expected
    quoted = list(descriptions)
    quoted[5] = f'"{quoted[5]}"'
    write_gct(folder / "quoted.gct", gem, names, quoted)
    labels = atlas.labels.rename("label")
    labels.to_csv(folder / "labels.tsv", sep="\t")
    wanted = symbols[:30]  # a symbol set: liver markers and more
    (folder / "symbols.gmt").write_text("SYMBOL_SET\tna\t" + "\t".join(wanted) + "\n")
    unversioned = [n.split(".")[0] for n in names[:30]]
    few = unversioned[:10] + [f"ENSG{900000 + j:011d}" for j in range(20)]  # 10 of 30 in the GEM
    (folder / "ensembl.gmt").write_text("ENSEMBL_SET\tna\t" + "\t".join(unversioned) + "\n"
                                        + "FEW_SET\tna\t" + "\t".join(few) + "\n")
    return folder, gem, names, descriptions


def test_gct_names_or_descriptions_and_the_merge_of_repeated_symbols(gtex_like, caplog):
    folder, gem, names, descriptions = gtex_like
    by_name = read_gem(folder / "gem.gct")
    assert list(by_name.columns) == names
    with caplog.at_level(logging.INFO, logger="tspg"):
        by_symbol = read_gem(folder / "gem.gct", gene_id_column="Description")
    assert list(by_symbol.columns) == list(dict.fromkeys(descriptions))  # first places kept
    first, second = gem.columns[0], gem.columns[1]
    np.testing.assert_allclose(by_symbol[first], (gem.iloc[:, 0] + gem.iloc[:, -2]) / 2, rtol=1e-5)
    np.testing.assert_allclose(by_symbol[second], (gem.iloc[:, 1] + gem.iloc[:, -1]) / 2, rtol=1e-5)
    np.testing.assert_allclose(by_symbol[gem.columns[7]], gem.iloc[:, 7], rtol=1e-6)
    assert any("2 gene names appear on more than one row (4 rows" in r.getMessage() for r in caplog.records)
    slow_path = read_gem(folder / "quoted.gct", gene_id_column="Description")
    pd.testing.assert_frame_equal(slow_path, by_symbol)
    with pytest.raises(InputError, match=".gct files only"):
        read_gem(folder / "labels.tsv", gene_id_column="Description")


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-reader", "pandas-reader"])
def test_descriptions_that_name_no_gene_are_left_out_or_refused(tmp_path, caplog, quoted):
    q = '"' if quoted else ""  # a quote sends the file to the pandas reader

    def gct(descriptions):
        rows = [f"{q}P{i}{q}\t{d}\t{i}\t{i + 1}" for i, d in enumerate(descriptions)]
        path = tmp_path / "gem.gct"
        path.write_text(f"#1.2\n{len(rows)}\t2\nNAME\tDescription\tx\ty\n" + "\n".join(rows) + "\n")
        return path

    # GSEA's placeholder on every row: all rows would merge into one gene called 'na'
    with pytest.raises(InputError, match=r"3 of 3 rows name no gene in the Description column \(e\.g\. 'na'\); "
                                         r"name genes by the Name column"):
        read_gem(gct(["na", "na", "na"]), gene_id_column="Description")
    # unannotated probes among symbols (Affymetrix's '---'): left out, with a warning
    with caplog.at_level(logging.WARNING, logger="tspg"):
        got = read_gem(gct(["TP53", "---", "MYC", "ACTB"]), gene_id_column="Description")
    assert list(got.columns) == ["TP53", "MYC", "ACTB"] and got["MYC"].tolist() == [2.0, 3.0]
    assert "1 of 4 rows name no gene in the Description column" in caplog.text


def test_a_symbol_gmt_against_ensembl_names_says_which_style_each_side_uses(gtex_like):
    folder, *_ = gtex_like
    with pytest.raises(InputError, match=r"look like Ensembl IDs \(ENSG\.\.\.\), the GMT's like gene symbols"
                                         r".*--gene-id-column Description"):
        load_dataset(folder / "gem.gct", folder / "labels.tsv", gene_sets=folder / "symbols.gmt",
                     gene_set_names=["SYMBOL_SET"])
    ds = load_dataset(folder / "gem.gct", folder / "labels.tsv", gene_sets=folder / "symbols.gmt",
                      gene_set_names=["SYMBOL_SET"], gene_id_column="Description")
    assert ds.gem.shape[1] == 30


def test_ensembl_sets_match_versioned_names_and_a_poor_match_is_explained(gtex_like, caplog):
    folder, _, names, _ = gtex_like
    ds = load_dataset(folder / "gem.gct", folder / "labels.tsv", gene_sets=folder / "ensembl.gmt",
                      gene_set_names=["ENSEMBL_SET"])
    assert list(ds.gem.columns) == names[:30]  # the GEM's own (versioned) names
    with caplog.at_level(logging.WARNING, logger="tspg"):
        few = load_dataset(folder / "gem.gct", folder / "labels.tsv", gene_sets=folder / "ensembl.gmt",
                           gene_set_names=["FEW_SET"])
    assert few.gem.shape[1] == 10
    lines = [r.getMessage() for r in caplog.records if "FEW_SET" in r.getMessage()]
    assert len(lines) == 1 and "only 10 of its 30 genes" in lines[0] and "both use Ensembl IDs" in lines[0]


def test_identifier_styles():
    assert id_style(["ENSG00000223972.5", "ENSG00000227232"]) == "Ensembl IDs (ENSG...)"
    assert id_style(["7157", "4609"]) == "Entrez IDs (numbers)"
    assert id_style(["1007_s_at", "1053_at"]) == "Affymetrix probe IDs (..._at)"
    assert id_style(["TP53", "HLA-A", "MYC"]) == "gene symbols (e.g. TP53)"


def test_the_command_takes_the_description_column(gtex_like, tmp_path):
    folder, *_ = gtex_like
    base = ["train-classifier", "--data", folder / "gem.gct", "--labels", folder / "labels.tsv", "--gene-sets",
            folder / "symbols.gmt", "--gene-set", "SYMBOL_SET", "--classifier-epochs", "1", "--quiet"]
    wrong = tspg(*base, "--out", tmp_path / "a")
    lines = [ln for ln in wrong.stderr.splitlines() if ln.strip()]
    assert wrong.returncode == 2 and len(lines) == 1 and "--gene-id-column Description" in lines[0], wrong.stderr
    assert not (tmp_path / "a").exists()
    right = tspg(*base, "--gene-id-column", "Description", "--out", tmp_path / "b")
    assert right.returncode == 0, right.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert len(manifest["genes"]) == 30 and manifest["inputs"]["gene_id_column"] == "Description"
    # the files moved: --data given again reads the GCT by the run's gene-name column, as recorded
    import shutil

    moved = shutil.copy(folder / "gem.gct", tmp_path / "moved.gct")
    again = tspg("train-generator", tmp_path / "b", "--target", "Liver", "--data", moved, "--epochs", "1", "--quiet")
    assert again.returncode == 0, again.stderr


def test_a_gct_read_for_a_gene_set_never_parses_the_other_rows(gtex_like, tmp_path):
    folder, gem, names, descriptions = gtex_like
    text = (folder / "gem.gct").read_text().splitlines()
    row = text[3 + 100].split("\t")  # a gene outside the 30-gene set: its numbers are never parsed
    row[5] = "not-a-number"
    text[3 + 100] = "\t".join(row)
    (tmp_path / "damaged.gct").write_text("\n".join(text) + "\n")
    ds = load_dataset(tmp_path / "damaged.gct", folder / "labels.tsv", gene_sets=folder / "symbols.gmt",
                      gene_set_names=["SYMBOL_SET"], gene_id_column="Description")
    assert ds.gem.shape[1] == 30
    with pytest.raises(InputError, match="not-a-number"):  # read whole, the damaged row is found
        read_gem(tmp_path / "damaged.gct")


def test_a_header_with_a_wrong_row_count_is_read_right_and_a_filtered_read_does_not_warn(gtex_like, tmp_path, caplog):
    folder, gem, names, descriptions = gtex_like
    text = (folder / "gem.gct").read_text().splitlines()
    for claimed in (7, 500):  # fewer rows than the file has (the matrix grows), more (it is trimmed)
        text[1] = f"{claimed}\t{gem.shape[0]}"
        (tmp_path / f"h{claimed}.gct").write_text("\n".join(text) + "\n")
        with caplog.at_level(logging.WARNING, logger="tspg"):
            caplog.clear()
            whole = read_gem(tmp_path / f"h{claimed}.gct")
        assert list(whole.columns) == names
        np.testing.assert_allclose(whole.to_numpy(), gem.to_numpy(), rtol=1e-6)
        assert [r.getMessage() for r in caplog.records] == [
            f"{tmp_path / f'h{claimed}.gct'}: header says {claimed} genes but the file has {len(names)} rows"]
        with caplog.at_level(logging.WARNING, logger="tspg"):
            caplog.clear()
            ds = load_dataset(tmp_path / f"h{claimed}.gct", folder / "labels.tsv", gene_sets=folder / "symbols.gmt",
                              gene_set_names=["SYMBOL_SET"], gene_id_column="Description")
        assert ds.gem.shape == (gem.shape[0], 30)
        assert not [r for r in caplog.records if "header says" in r.getMessage()]  # 30 of 120 rows is no fault


@pytest.mark.parametrize("owner", [True, False])
def test_rows_are_compacted_in_place_as_fancy_indexing_would(owner):
    from tspg.data._gem import _compact_rows

    rng = np.random.default_rng(3)
    for n_rows in (1, 5, 300, 1000):
        values = rng.normal(size=(n_rows, 7)).astype(np.float32)
        rows = np.flatnonzero(rng.random(n_rows) < 0.7)
        if len(rows) == 0:
            rows = np.array([n_rows - 1])
        expected = values[rows]
        # a view (of a larger matrix) does not own its memory and cannot be trimmed in place: copied once
        source = values if owner else np.vstack([values, values])[:n_rows]
        out = _compact_rows(source, rows, step_bytes=16 * 7 * 4)  # 16 rows a step
        np.testing.assert_array_equal(out, expected)
        assert (out.base is None) and (out is source) == owner
