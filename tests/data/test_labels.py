"""Labels from two-column text (header optional), GSEA .cls (names or indexes) and an AnnData .obs column."""

from __future__ import annotations

import pandas as pd
import pytest

from tspg.data import InputError, labels_from_obs, read_labels

SAMPLES = ["s1", "s2", "s3", "s4", "s5"]
CLASSES = ["ALL", "ALL", "AML", "ALL", "AML"]
EXPECTED = dict(zip(SAMPLES, CLASSES, strict=True))


def _lines(path, lines):  # noqa: ANN001, ANN202
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("samples", [SAMPLES, None], ids=["with-gem-samples", "without"])
@pytest.mark.parametrize(
    ("header", "sep", "name"),
    [(None, "\t", "labels.tsv"), ("sample\tlabel", "\t", "labels.tsv"), ("id\tclass", "\t", "labels.txt"),
     ("sample,label", ",", "labels.csv"), (None, ",", "labels.csv")],
    ids=["tsv-no-header", "tsv-header", "txt-header", "csv-header", "csv-no-header"],
)
def test_two_column_labels(header, sep, name, samples, tmp_path):
    lines = ([header] if header else []) + [f"{s}{sep}{c}" for s, c in EXPECTED.items()]
    got = read_labels(_lines(tmp_path / name, lines), samples=samples)
    assert got.to_dict() == EXPECTED
    assert list(got.index) == SAMPLES  # file order
    assert got.name == "label"


def test_header_detected_from_gem_samples_even_with_unusual_names(tmp_path):
    p = _lines(tmp_path / "labels.tsv", ["cell_barcode\tcell_type", "s1\tALL", "s2\tAML"])
    assert read_labels(p, samples=["s1", "s2"]).to_dict() == {"s1": "ALL", "s2": "AML"}


def test_header_with_padding_is_still_a_header(tmp_path):
    p = _lines(tmp_path / "labels.tsv", ["sample\tlabel", " s1 \t ALL ", " s2\tAML"])
    assert read_labels(p, samples=["s1", "s2"]).to_dict() == {"s1": "ALL", "s2": "AML"}


def test_extra_columns_are_ignored_and_labels_with_spaces_kept(tmp_path):
    p = _lines(tmp_path / "labels.tsv", ["s1\tHeart - Left Ventricle\tx", "s2\tLiver\ty"])
    assert read_labels(p).to_dict() == {"s1": "Heart - Left Ventricle", "s2": "Liver"}


def test_numeric_looking_ids_and_labels_stay_text(tmp_path):
    p = _lines(tmp_path / "labels.tsv", ["001\t1", "002\t2", "NA\tNA"])
    assert read_labels(p, samples=["001", "002", "NA"]).to_dict() == {"001": "1", "002": "2", "NA": "NA"}


@pytest.mark.parametrize(
    ("lines", "keyword"),
    [
        ([], r"the labels file is empty"),
        (["s1 ALL", "s2 AML"], r"expected two tab-separated columns \(sample id, label\); found 1"),
        (["s1\tALL", "s2\t", "s3\tAML"], r"1 sample\(s\) have an empty label, e\.g\. 's2'"),
        (["s1\tALL", "s2\tAML", "s1\tAML"], r"1 sample id\(s\) appear more than once, e\.g\. s1"),
    ],
    ids=["empty", "space-separated", "empty-label", "duplicated-sample"],
)
def test_bad_label_tables(lines, keyword, tmp_path):
    with pytest.raises(InputError, match=keyword):
        read_labels(_lines(tmp_path / "labels.tsv", lines), samples=["s1", "s2", "s3"])


def test_missing_and_binary_label_files(tmp_path):
    with pytest.raises(InputError, match=r"nope\.tsv: no such file"):
        read_labels(tmp_path / "nope.tsv")
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\x00s1\tA\n")
    with pytest.raises(InputError, match=r"not a UTF-8 text file"):
        read_labels(tmp_path / "bin.tsv")


# ----------------------------------------------------------------------------------------------------- .cls
def test_cls_with_class_names(tmp_path):
    p = _lines(tmp_path / "x.cls", ["5 2 1", "# ALL AML", " ".join(CLASSES)])
    got = read_labels(p, samples=SAMPLES)
    assert got.to_dict() == EXPECTED and list(got.index) == SAMPLES


def test_cls_with_class_indexes(tmp_path):
    p = _lines(tmp_path / "x.cls", ["5 2 1", "# ALL AML", "0 0 1 0 1"])
    assert read_labels(p, samples=SAMPLES).to_dict() == EXPECTED


def test_cls_whose_class_names_are_numbers_is_not_reindexed(tmp_path):
    # labels 1 and 2 are the class names themselves, not indexes into "# 1 2"
    p = _lines(tmp_path / "x.cls", ["4 2 1", "#1 2", "1 2 2 1"])
    assert read_labels(p, samples=["a", "b", "c", "d"]).tolist() == ["1", "2", "2", "1"]


@pytest.mark.parametrize(
    ("lines", "samples", "keyword"),
    [
        (["6 2 1", "# ALL AML", " ".join(CLASSES)], SAMPLES, r"line 1 says 6 samples but line 3 has 5"),
        (["4 2 1", "# ALL AML", "ALL AML ALL AML"], SAMPLES, r"4 labels for 5 GEM samples"),
        (["5 2 1", "ALL AML", " ".join(CLASSES)], SAMPLES, r"line 2 of a \.cls file must start with '#'"),
        (["5 2 1", "# ALL AML"], SAMPLES, r"needs 3 lines .* it has 2"),
        (["5 2 1", "# ALL AML", "0 0 2 0 1"], SAMPLES, r"label index 2 but only 2 class names"),
        (["5 2 1", "# ALL AML", " ".join(CLASSES)], None, r"needs the GEM"),
    ],
    ids=["count-line1", "count-gem", "no-hash", "two-lines", "index-out-of-range", "no-samples"],
)
def test_bad_cls(lines, samples, keyword, tmp_path):
    with pytest.raises(InputError, match=keyword):
        read_labels(_lines(tmp_path / "x.cls", lines), samples=samples)


# ----------------------------------------------------------------------------------------------------- .obs
def test_labels_from_obs_column():
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(["B", "T", "B"]), "n_genes": [10, 20, 30]}, index=["c1", "c2", "c3"]
    )
    got = labels_from_obs(obs, "cell_type")
    assert got.to_dict() == {"c1": "B", "c2": "T", "c3": "B"}
    assert got.dtype == object
    assert labels_from_obs(obs, "n_genes").tolist() == ["10", "20", "30"]


def test_labels_from_obs_errors():
    obs = pd.DataFrame({"cell_type": ["B", None, "T"], "louvain": ["0", "1", "2"]}, index=["c1", "c2", "c3"])
    with pytest.raises(InputError,
                       match=r"data\.h5ad: no \.obs column 'celltype'; columns present: cell_type, louvain"):
        labels_from_obs(obs, "celltype", source="data.h5ad")
    with pytest.raises(InputError, match=r"\.obs\['cell_type'\] is missing for 1 sample\(s\), e\.g\. 'c2'"):
        labels_from_obs(obs, "cell_type")


@pytest.mark.parametrize(("name", "content"), [
    ("labels.tsv.gz", b"s1\tALL\n"),  # named .gz, not gzip
    ("labels.tsv.bz2", b"s1\tALL\n"),
    ("labels.zip", b"PK\x03\x04 not a zip"),
    ("labels.tsv.gz", None),  # a gzip stream cut short (an interrupted download)
], ids=["not-gzip", "not-bzip2", "not-zip", "truncated-gzip"])
def test_labels_that_do_not_decompress_are_one_input_error(name, content, tmp_path):
    import gzip

    path = tmp_path / name
    whole = "".join(f"s{i}\tALL\n" for i in range(2000)).encode()
    path.write_bytes(content if content is not None else gzip.compress(whole)[:200])
    with pytest.raises(InputError, match=rf"{name}: cannot read the labels \(.+\); is it a complete text file"):
        read_labels(path, samples=SAMPLES)


def test_a_first_line_with_an_unknown_sample_and_a_class_is_a_sample_not_a_header(tmp_path):
    # a header names no class; a first line that does is a sample the GEM lacks, which alignment then reports
    lines = ["sX\tAML"] + [f"{s}\t{c}" for s, c in EXPECTED.items()]
    got = read_labels(_lines(tmp_path / "labels.tsv", lines), samples=SAMPLES)
    assert list(got.index) == ["sX", *SAMPLES]
    lines = ["sample_name\tdisease"] + [f"{s}\t{c}" for s, c in EXPECTED.items()]
    assert read_labels(_lines(tmp_path / "labels.tsv", lines), samples=SAMPLES).to_dict() == EXPECTED


def test_a_byte_order_mark_is_not_part_of_a_cls_file(tmp_path):
    p = tmp_path / "x.cls"
    p.write_text("\ufeff5 2 1\n# ALL AML\n" + " ".join(CLASSES) + "\n", encoding="utf-8")
    assert read_labels(p, samples=SAMPLES).to_dict() == EXPECTED
