"""GMT reading (with or without the description column) and gene set selection."""

from __future__ import annotations

import logging

import pytest

from tspg.data import InputError, load_dataset, make_atlas, read_gmt, select_gene_sets

SETS = {
    "HALLMARK_APOPTOSIS": ["CASP3", "BAX", "BCL2", "TP53"],
    "HALLMARK_HYPOXIA": ["HIF1A", "VEGFA", "LDHA"],
    "HALLMARK_MYC_TARGETS_V1": ["MYC", "NPM1", "TP53"],
}
GEM_GENES = ["MYC", "TP53", "VEGFA", "BAX", "CASP3", "LDHA", "ACTB"]


def _gmt(path, sets, description):  # noqa: ANN001, ANN202
    lines = ["\t".join([k] + ([description(k)] if description else []) + v) for k, v in sets.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


DESCRIPTIONS = {
    "none": None,
    "url": lambda k: f"http://www.gsea-msigdb.org/gsea/msigdb/cards/{k}",
    "text": lambda k: f"genes of {k.lower()}",
    "na": lambda k: "na",
    "empty": lambda k: "",
    "one-word": lambda k: "hallmark",  # only the GEM's genes can tell this from a gene
}


@pytest.mark.parametrize("layout", list(DESCRIPTIONS))
def test_gmt_with_and_without_description_give_the_same_sets(layout, tmp_path):
    path = _gmt(tmp_path / "sets.gmt", SETS, DESCRIPTIONS[layout])
    assert read_gmt(path, genes=GEM_GENES) == SETS
    if layout != "one-word":
        assert read_gmt(path) == SETS


def test_gmt_one_word_description_without_known_genes_is_read_as_a_gene(tmp_path):
    """Documented limit: without the GEM's genes, a one-word second field cannot be told from a gene."""
    path = _gmt(tmp_path / "sets.gmt", SETS, DESCRIPTIONS["one-word"])
    assert read_gmt(path)["HALLMARK_HYPOXIA"] == ["hallmark", "HIF1A", "VEGFA", "LDHA"]


def test_gmt_details(tmp_path):
    p = tmp_path / "x.gmt"
    # CRLF, blank lines, a duplicated gene and an empty field
    p.write_text("A\tna\tG1\tG2\tG1\t\tG3\r\n\n   \nB\tna\tG3\n")
    assert read_gmt(p) == {"A": ["G1", "G2", "G3"], "B": ["G3"]}


@pytest.mark.parametrize(
    ("content", "keyword"),
    [
        ("A\tna\tG1\nA\tna\tG2\n", r"gene set 'A' is defined twice"),
        ("A\tna\tG1\nB\n", r"line 2 is not 'name<TAB>\[description<TAB>\]gene\.\.\.'"),
        ("\tna\tG1\n", r"line 1 is not"),
        ("\n\n", r"no gene sets in the file"),
    ],
    ids=["twice", "name-only", "no-name", "empty"],
)
def test_bad_gmt(content, keyword, tmp_path):
    p = tmp_path / "x.gmt"
    p.write_text(content)
    with pytest.raises(InputError, match=keyword):
        read_gmt(p)


def test_missing_and_binary_gmt(tmp_path):
    with pytest.raises(InputError, match=r"no such file"):
        read_gmt(tmp_path / "none.gmt")
    (tmp_path / "bin.gmt").write_bytes(b"A\tna\t\xff\xfe\n")
    with pytest.raises(InputError, match=r"not a UTF-8 text file"):
        read_gmt(tmp_path / "bin.gmt")


# ------------------------------------------------------------------------------------------------ selection
def test_select_gene_sets_reports_missing_genes(caplog):
    with caplog.at_level(logging.INFO, logger="tspg"):
        selected, report = select_gene_sets(SETS, ["HALLMARK_APOPTOSIS", "HALLMARK_HYPOXIA"], GEM_GENES)
    assert selected == ["TP53", "VEGFA", "BAX", "CASP3", "LDHA"]  # union, in the GEM's order
    assert report == {
        "HALLMARK_APOPTOSIS": {"n_genes": 4, "n_missing": 1, "missing": ["BCL2"]},
        "HALLMARK_HYPOXIA": {"n_genes": 3, "n_missing": 1, "missing": ["HIF1A"]},
    }
    assert "gene set HALLMARK_APOPTOSIS: 1 of 4 genes are not in the GEM (e.g. BCL2)" in caplog.text


def test_select_gene_sets_all_present():
    selected, report = select_gene_sets(SETS, ["HALLMARK_MYC_TARGETS_V1"], ["NPM1", "TP53", "MYC", "X"])
    assert selected == ["NPM1", "TP53", "MYC"]
    assert report["HALLMARK_MYC_TARGETS_V1"] == {"n_genes": 3, "n_missing": 0, "missing": []}


def test_unknown_gene_set_lists_close_matches():
    with pytest.raises(InputError) as exc:
        select_gene_sets(SETS, ["HALLMARK_HYPOXA"], GEM_GENES, source="h.gmt")
    msg = str(exc.value)
    assert msg.startswith("Unknown gene set 'HALLMARK_HYPOXA' in h.gmt; did you mean HALLMARK_HYPOXIA")
    with pytest.raises(InputError, match=r"Unknown gene set 'XYZ' in the GMT file; 3 sets are defined there"):
        select_gene_sets(SETS, ["XYZ"], GEM_GENES)


def test_gene_set_without_any_gem_gene():
    with pytest.raises(InputError, match=r"None of the genes of gene set\(s\) HALLMARK_HYPOXIA are in the "
                                         r"GEM; the GEM's genes look like Ensembl IDs \(ENSG\.\.\.\), the GMT's "
                                         r"like gene symbols"):
        select_gene_sets(SETS, ["HALLMARK_HYPOXIA"], ["ENSG00000141510", "ENSG00000136997"])


# ------------------------------------------------------------------------------------ through load_dataset
def test_load_dataset_keeps_the_genes_of_the_chosen_sets(tmp_path):
    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=4, n_markers=3, n_programs=2,
                       program_size=5)
    paths = atlas.write(tmp_path)
    # the written GMT has a description column; plain read_gmt (no GEM genes) must see it too
    assert read_gmt(paths["gene_sets"]) == atlas.gene_sets
    ds = load_dataset(paths["data"], paths["labels"], gene_sets=paths["gene_sets"],
                      gene_set_names=["LIVER_UP", "LUNG_DOWN"])
    wanted = set(atlas.markers["Liver"]["up"]) | set(atlas.markers["Lung"]["down"])
    assert ds.genes == [g for g in atlas.gem.columns if g in wanted] and len(ds.genes) == 6
    assert ds.gene_set_report == {"LIVER_UP": {"n_genes": 3, "n_missing": 0, "missing": []},
                                  "LUNG_DOWN": {"n_genes": 3, "n_missing": 0, "missing": []}}
    assert ds.gem.shape == (12, 6)


def test_load_dataset_gene_set_option_errors(tmp_path):
    atlas = make_atlas(n_classes=2, n_genes=20, samples_per_class=3, n_markers=2, n_programs=1,
                       program_size=4)
    paths = atlas.write(tmp_path)
    with pytest.raises(InputError, match=r"gene_set_names needs gene_sets=GMT_FILE"):
        load_dataset(paths["data"], paths["labels"], gene_set_names=["LIVER_UP"])
    with pytest.raises(InputError, match=r"gene_sets given without gene_set_names=NAME; choose one or more of "
                                         r"the 5 sets .* \(e\.g\. PROGRAM_01, LIVER_UP, LIVER_DOWN\)"):
        load_dataset(paths["data"], paths["labels"], gene_sets=paths["gene_sets"])
    with pytest.raises(InputError, match=r"Unknown gene set 'LIVER_U' .*did you mean LIVER_UP"):
        load_dataset(paths["data"], paths["labels"], gene_sets=paths["gene_sets"], gene_set_names=["LIVER_U"])


def test_a_byte_order_mark_is_not_part_of_the_first_set_name(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("\ufeff" + "\n".join("\t".join([k, "na", *v]) for k, v in SETS.items()) + "\n", encoding="utf-8")
    assert list(read_gmt(path)) == list(SETS)
