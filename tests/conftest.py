"""Shared fixtures: small hand-made inputs, a small synthetic atlas on disk, and the real data sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _restore_logging():  # noqa: ANN202
    """An in-process command reconfigures logging and the warnings hook; put them back after every test."""
    import logging
    import warnings

    root = logging.getLogger()
    named = [logging.getLogger(n) for n in ("tspg", "tspg.library", "openTSNE")]
    saved = (list(root.handlers), root.level, [lg.level for lg in named], warnings.showwarning)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for lg, level in zip(named, saved[2], strict=True):
        lg.setLevel(level)
    warnings.showwarning = saved[3]


@pytest.fixture(autouse=True)
def _torch_seed() -> None:
    """Seed torch's global generator before every test, so that no test depends on the ones run before it.

    The suite runs in a random order (pytest-randomly reseeds ``random`` and NumPy, not torch): a test that draws
    from torch's global generator (a layer's initial weights, ``torch.rand``) otherwise saw a different stream in
    each order, and a test that held at one draw could fail at another.
    """
    import torch

    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ``<repo>/../shared/data``.

    Skips when the folder is absent (a fresh clone without the data beside it), except in CI
    (``CI=true``), where the folder is always present and its absence is a failure.
    """
    if not SHARED_DATA.is_dir():
        reason = f"real data folder {SHARED_DATA} is absent (put the shared data beside the repository)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; it must exist in CI")
        pytest.skip(reason)
    return SHARED_DATA


@pytest.fixture
def tiny_gem() -> pd.DataFrame:
    """6 samples x 4 genes, float32: a negative value, a constant gene, numeric-looking sample ids.

    Every value is exactly representable in float32 and in decimal text, so every format must give it back
    bit for bit.
    """
    values = np.array(
        [
            [1.5, -2.25, 7.0, 0.0],
            [2.0, 0.5, 7.0, 10.0],
            [0.25, 4.0, 7.0, 3.5],
            [5.0, 1.0, 7.0, -1.0],
            [3.0, 2.0, 7.0, 0.125],
            [1.0, 1.0, 7.0, 1024.0],
        ],
        dtype=np.float32,
    )
    samples = ["s1", "s2", "007", "s4", "s5", "s6"]  # "007" must stay "007", not become 7
    genes = ["TP53", "GATA1", "CONST", "MYC"]
    return pd.DataFrame(values, index=pd.Index(samples, dtype=object), columns=pd.Index(genes, dtype=object))


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


class Files:
    """Writes small input files into one folder (``tmp_path``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / name

    def text(self, name: str, text: str) -> Path:
        p = self.folder / name
        p.write_text(text)
        return p

    def gem_tsv(self, gem: pd.DataFrame, name: str = "gem.tsv") -> Path:
        p = self.folder / name
        sep = "," if name.endswith((".csv", ".csv.gz")) else "\t"
        gem.to_csv(p, sep=sep, index_label="sample")
        return p

    def labels_tsv(self, labels: pd.Series | dict, name: str = "labels.tsv", header: bool = False) -> Path:
        lines = (["sample\tlabel"] if header else []) + [f"{s}\t{c}" for s, c in labels.items()]
        return _write_lines(self.folder / name, lines)

    def gmt(self, sets: dict[str, list[str]], name: str = "sets.gmt", description: str | None = "na") -> Path:
        lines = []
        for k, genes in sets.items():
            fields = [k] + ([description] if description is not None else []) + list(genes)
            lines.append("\t".join(fields))
        return _write_lines(self.folder / name, lines)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """A writer of small input files in ``tmp_path``."""
    return Files(tmp_path)


def make_labelled(
    n_per_class: dict[str, int], n_genes: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """A random labelled GEM (samples interleaved across classes), values in [-3, 3]."""
    rng = np.random.default_rng(seed)
    labels = [c for c, n in n_per_class.items() for _ in range(n)]
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]
    samples = [f"S{i:03d}" for i in range(len(labels))]
    genes = [f"G{j}" for j in range(n_genes)]
    values = rng.uniform(-3, 3, (len(labels), n_genes)).astype(np.float32)
    gem = pd.DataFrame(values, index=pd.Index(samples, dtype=object), columns=pd.Index(genes, dtype=object))
    return gem, pd.Series(labels, index=gem.index, name="label")


@pytest.fixture
def labelled() -> tuple[pd.DataFrame, pd.Series]:
    """A valid labelled GEM: classes A (5), B (4), C (3) samples x 5 genes."""
    return make_labelled({"A": 5, "B": 4, "C": 3})


@pytest.fixture
def labelled_factory():  # noqa: ANN201
    """:func:`make_labelled`, for tests that need other class sizes."""
    return make_labelled


@pytest.fixture(scope="session")
def atlas_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic atlas written to disk: 3 classes x 8 samples x 40 genes, with its GMT.

    Session-scoped and read-only: tests that need to change a file copy it first.
    """
    from tspg.data import make_atlas

    atlas = make_atlas(n_classes=3, n_genes=40, samples_per_class=8, n_markers=3, n_programs=2,
                       program_size=5)
    return atlas.write(tmp_path_factory.mktemp("atlas"))


# ---------------------------------------------------------------- fuzzing (tests/data/test_fuzz.py)
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz", action="store_true", help="run the fuzz tests with the long 'fuzz' profile")


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    # ci: bounded and derandomised (the same examples every run, seconds); fuzz: long, random
    settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None)
    settings.register_profile("fuzz", max_examples=2000, deadline=None)
    settings.load_profile("fuzz" if config.getoption("--fuzz") else "ci")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    from fuzzhelp import TRIED

    if TRIED:
        parts = ", ".join(f"{name} {n}" for name, n in sorted(TRIED.items()))
        terminalreporter.write_line(f"fuzz: {sum(TRIED.values())} examples tried ({parts})")
