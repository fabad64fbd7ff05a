"""A deterministic synthetic "tissue atlas" with known marker genes, for the demo, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

TISSUES = (
    "Liver", "Lung", "Heart - Left Ventricle", "Brain - Cortex", "Muscle - Skeletal", "Thyroid",
    "Kidney - Cortex", "Pancreas", "Spleen", "Skin (sun exposed)", "Stomach", "Testis",
)


@dataclass
class SyntheticAtlas:
    """A synthetic labelled GEM with planted biology.

    Attributes
    ----------
    gem
        Samples x genes, log-expression-like values (>= 0), float32.
    labels
        Class per sample.
    gene_sets
        GMT content: one set per co-expressed gene program (``PROGRAM_NN``) and, per class, its planted up and
        down marker sets (``<CLASS>_UP`` / ``<CLASS>_DOWN``, class names upper-cased, non-alphanumerics as ``_``).
    markers
        Per class: ``{"up": [...], "down": [...]}``.
    individuals
        For paired atlases (:func:`make_paired_atlas`): the individual each sample comes from; else None.
    true_delta
        For paired atlases: per sample (rows, same order as ``gem``), its own noise-free transition to the other
        state in expression units (the individual's expected profile in the other state minus the expected
        profile in its own); else None.
    """

    gem: pd.DataFrame
    labels: pd.Series
    gene_sets: dict[str, list[str]]
    markers: dict[str, dict[str, list[str]]]
    individuals: pd.Series | None = None
    true_delta: pd.DataFrame | None = None
    sampler: Callable[[str, int, np.random.Generator], np.ndarray] | None = field(default=None, repr=False)

    def draw(self, cls: str, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` new samples of class ``cls`` from the atlas's own generating distribution.

        New draws of every random part of a sample (program activities, or for a paired atlas a new individual's;
        the noise), with the atlas's fixed parts (baselines, programs, markers). They are what a perfect
        transition would produce: the benchmark scores them beside every method as the floor that real held-out
        samples allow (``true_target``).

        Parameters
        ----------
        cls
            A class of the atlas.
        n
            How many samples.
        seed
            Seed of the new draws (independent of the atlas's own).

        Returns
        -------
        Samples (``NEW00001``...) x the atlas's genes, float32.

        Examples
        --------
        >>> atlas = make_atlas(n_classes=3, n_genes=200, samples_per_class=20, seed=0)
        >>> atlas.draw("Liver", 5).shape
        (5, 200)
        """
        if self.sampler is None:
            raise ValueError("this atlas has no generating distribution to draw from")
        if cls not in set(self.labels):
            raise ValueError(f"no class {cls!r} in the atlas")
        x = self.sampler(cls, int(n), np.random.default_rng(seed))
        return pd.DataFrame(x.astype(np.float32), index=[f"NEW{i + 1:05d}" for i in range(len(x))],
                            columns=self.gem.columns)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``gem.tsv``, ``labels.tsv`` and ``gene_sets.gmt`` into ``folder``; return their paths."""
        from tspg._io import atomic_write_text, write_table

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"data": folder / "gem.tsv", "labels": folder / "labels.tsv", "gene_sets": folder / "gene_sets.gmt"}
        write_table(self.gem, paths["data"], index_label="sample")
        atomic_write_text(paths["labels"], "".join(f"{s}\t{c}\n" for s, c in self.labels.items()))
        atomic_write_text(
            paths["gene_sets"],
            "".join(f"{k}\tsynthetic gene set\t" + "\t".join(v) + "\n" for k, v in self.gene_sets.items()),
        )
        return paths


def set_name(cls: str) -> str:
    """Marker set name stem of a class: upper-case, non-alphanumerics as ``_``."""
    return "".join(ch if ch.isalnum() else "_" for ch in cls.upper()).strip("_")


def make_atlas(
    n_classes: int = 6,
    n_genes: int = 500,
    samples_per_class: int | list[int] = 150,
    n_markers: int = 20,
    marker_strength: float = 1.5,
    n_programs: int = 12,
    program_size: int = 20,
    noise: float = 0.5,
    seed: int = 0,
) -> SyntheticAtlas:
    """Build a synthetic tissue atlas with correlated gene programs and planted marker genes.

    Each gene has a baseline level; genes of a program share a latent per-sample activity whose mean depends on
    the class (so programs are co-expressed and partly class-linked); each class switches its own
    ``n_markers`` up-markers on (``+marker_strength``) and ``n_markers`` down-markers off; Gaussian noise is
    added and values are clipped at 0 (log-expression-like).

    Parameters
    ----------
    n_classes
        Number of classes (at most 12 named tissues; more get generic names).
    n_genes
        Number of genes; needs ``2 * n_markers * n_classes <= n_genes``.
    samples_per_class
        One count for every class, or one per class (class imbalance).
    n_markers
        Up and down markers per class (disjoint across classes).
    marker_strength
        Shift of marker genes, in units of expression (noise SD is ``noise``).
    n_programs, program_size
        Co-expressed gene programs (they may overlap marker genes).
    noise
        SD of the per-gene noise.
    seed
        The random seed; the same arguments give the same atlas.

    Returns
    -------
    The :class:`SyntheticAtlas`.
    """
    if 2 * n_markers * n_classes > n_genes:
        raise ValueError(f"{n_genes} genes are too few for {n_classes} classes x 2 x {n_markers} markers")
    rng = np.random.default_rng(seed)
    names = [TISSUES[i] if i < len(TISSUES) else f"Tissue {i + 1:02d}" for i in range(n_classes)]
    counts = [samples_per_class] * n_classes if isinstance(samples_per_class, int) else list(samples_per_class)
    if len(counts) != n_classes:
        raise ValueError("samples_per_class needs one count per class")
    genes = [f"SYN{i + 1:05d}" for i in range(n_genes)]
    y = np.repeat(np.arange(n_classes), counts)
    n = len(y)

    baseline = rng.uniform(2.0, 8.0, n_genes)
    x = np.tile(baseline, (n, 1))
    programs = {}
    program_means = rng.normal(0.0, 0.8, (n_classes, n_programs))
    parts = []
    for p in range(n_programs):
        members = rng.choice(n_genes, program_size, replace=False)
        loadings = rng.uniform(0.4, 1.0, program_size)
        activity = program_means[y, p] + rng.normal(0.0, 0.7, n)
        x[:, members] += activity[:, None] * loadings[None, :]
        programs[f"PROGRAM_{p + 1:02d}"] = [genes[i] for i in sorted(members)]
        parts.append((members, loadings))

    order = rng.permutation(n_genes)
    markers: dict[str, dict[str, list[str]]] = {}
    blocks = []
    for c in range(n_classes):
        block = order[2 * n_markers * c: 2 * n_markers * (c + 1)]
        up, down = block[:n_markers], block[n_markers:]
        rows = y == c
        x[np.ix_(rows, up)] += marker_strength
        x[np.ix_(rows, down)] -= marker_strength
        markers[names[c]] = {"up": [genes[i] for i in sorted(up)], "down": [genes[i] for i in sorted(down)]}
        blocks.append((up, down))

    def sampler(cls: str, m: int, draws: np.random.Generator) -> np.ndarray:
        c = names.index(cls)
        new = np.tile(baseline, (m, 1))
        for p, (members, loadings) in enumerate(parts):
            new[:, members] += (program_means[c, p] + draws.normal(0.0, 0.7, m))[:, None] * loadings[None, :]
        new[:, blocks[c][0]] += marker_strength
        new[:, blocks[c][1]] -= marker_strength
        new += draws.normal(0.0, noise, new.shape)
        return np.clip(new, 0.0, None)

    x += rng.normal(0.0, noise, x.shape)
    np.clip(x, 0.0, None, out=x)
    samples = [f"S{i + 1:05d}" for i in range(n)]
    perm = rng.permutation(n)
    gem = pd.DataFrame(x[perm].astype(np.float32), index=[samples[i] for i in range(n)], columns=genes)
    labels = pd.Series([names[c] for c in y[perm]], index=gem.index, name="label")
    gene_sets = dict(programs)
    for cls, m in markers.items():
        gene_sets[f"{set_name(cls)}_UP"] = m["up"]
        gene_sets[f"{set_name(cls)}_DOWN"] = m["down"]
    return SyntheticAtlas(gem=gem, labels=labels, gene_sets=gene_sets, markers=markers, sampler=sampler)


def make_paired_atlas(
    n_individuals: int = 150,
    n_genes: int = 500,
    states: tuple[str, str] = ("Normal", "Tumour"),
    n_markers: int = 20,
    marker_strength: float = 1.5,
    n_programs: int = 12,
    program_size: int = 20,
    n_response_programs: int = 8,
    response_gain: float = 2.0,
    noise: float = 0.5,
    seed: int = 0,
) -> SyntheticAtlas:
    """Individuals observed in two states, with an individual-specific part of each one's transition.

    Every individual has a latent activity per co-expressed gene program (shared by its two samples). The second
    state switches its own marker genes up and down (the class-mean part of the transition) and multiplies the
    individual's activity of ``n_response_programs`` programs by ``1 + response_gain`` (the individual-specific
    part: an individual with high activity of a response program changes more, one with activity below average
    changes the other way). So each sample's own true transition is known, differs between samples of one class,
    and can be read off its own expression (the program genes); a class-mean shift, which moves every sample of
    a class alike, captures only its average. Noise is drawn independently for each sample.

    Parameters
    ----------
    n_individuals
        Individuals; each gives one sample in each state.
    n_genes
        Genes; needs ``2 * n_markers <= n_genes``.
    states
        The two class names (first: without markers).
    n_markers, marker_strength
        Up and down markers of the second state and their shift (expression units).
    n_programs, program_size
        Co-expressed gene programs (disjoint from the markers).
    n_response_programs
        Programs whose activity the second state amplifies (the first of them).
    response_gain
        Extra gain of those programs in the second state. The defaults (8 programs, gain 2) make the individual
        part large next to the error of class means estimated from ~100 samples: on the benchmark's paired
        atlas the specificity of a class-mean shift is -0.11 and that of the Gaussian optimal-transport map
        0.54 (1 is each sample's own truth), where 4 programs with gain 1 gave -0.38 and -0.08.
    noise
        SD of the per-gene noise of each sample.
    seed
        The random seed; the same arguments give the same atlas.

    Returns
    -------
    A :class:`SyntheticAtlas` with ``individuals`` and ``true_delta`` set; ``markers`` has the second state's
    markers (and empty lists for the first), ``gene_sets`` the programs (``RESPONSE_NN`` for the amplified ones).

    Examples
    --------
    >>> atlas = make_paired_atlas(n_individuals=10, n_genes=300, seed=1)
    >>> atlas.gem.shape, sorted(atlas.labels.unique())
    ((20, 300), ['Normal', 'Tumour'])
    """
    if 2 * n_markers + n_programs * program_size > n_genes:
        raise ValueError(f"{n_genes} genes are too few for 2 x {n_markers} markers and {n_programs} programs of "
                         f"{program_size}")
    if not 0 <= n_response_programs <= n_programs:
        raise ValueError("n_response_programs must be between 0 and n_programs")
    rng = np.random.default_rng(seed)
    genes = [f"SYN{i + 1:05d}" for i in range(n_genes)]
    order = rng.permutation(n_genes)
    up, down = order[:n_markers], order[n_markers:2 * n_markers]
    rest = order[2 * n_markers:]
    baseline = rng.uniform(2.0, 8.0, n_genes)
    activity = rng.normal(0.0, 0.7, (n_individuals, n_programs))
    gene_sets: dict[str, list[str]] = {}
    parts = []
    for p in range(n_programs):
        members = rest[p * program_size:(p + 1) * program_size]
        loadings = rng.uniform(0.4, 1.0, program_size)
        response = p < n_response_programs
        parts.append((members, loadings, response))
        gene_sets[f"{'RESPONSE' if response else 'PROGRAM'}_{p + 1:02d}"] = [genes[i] for i in sorted(members)]

    def expected_profiles(act: np.ndarray) -> dict[str, np.ndarray]:
        out = {s: np.tile(baseline, (len(act), 1)) for s in states}
        for p, (members, loadings, response) in enumerate(parts):
            effect = act[:, p:p + 1] * loadings[None, :]
            out[states[0]][:, members] += effect
            out[states[1]][:, members] += effect * (1.0 + response_gain if response else 1.0)
        out[states[1]][:, up] += marker_strength
        out[states[1]][:, down] -= marker_strength
        for s in states:
            np.clip(out[s], 0.0, None, out=out[s])
        return out

    def sampler(cls: str, m: int, draws: np.random.Generator) -> np.ndarray:
        new = expected_profiles(draws.normal(0.0, 0.7, (m, n_programs)))[cls]
        return np.clip(new + draws.normal(0.0, noise, new.shape), 0.0, None)

    expected = expected_profiles(activity)
    x = np.concatenate([expected[s] + rng.normal(0.0, noise, (n_individuals, n_genes)) for s in states])
    np.clip(x, 0.0, None, out=x)
    delta = np.concatenate([expected[states[1]] - expected[states[0]], expected[states[0]] - expected[states[1]]])
    ind = np.tile(np.arange(n_individuals), 2)
    lab = np.repeat(np.arange(2), n_individuals)
    perm = rng.permutation(len(x))
    samples = [f"I{ind[i] + 1:04d}_{'AB'[lab[i]]}" for i in perm]
    gem = pd.DataFrame(x[perm].astype(np.float32), index=samples, columns=genes)
    labels = pd.Series([states[lab[i]] for i in perm], index=gem.index, name="label")
    individuals = pd.Series([f"I{ind[i] + 1:04d}" for i in perm], index=gem.index, name="individual")
    true_delta = pd.DataFrame(delta[perm].astype(np.float32), index=gem.index, columns=genes)
    markers = {states[0]: {"up": [], "down": []},
               states[1]: {"up": [genes[i] for i in sorted(up)], "down": [genes[i] for i in sorted(down)]}}
    gene_sets[f"{set_name(states[1])}_UP"] = markers[states[1]]["up"]
    gene_sets[f"{set_name(states[1])}_DOWN"] = markers[states[1]]["down"]
    return SyntheticAtlas(gem=gem, labels=labels, gene_sets=gene_sets, markers=markers, individuals=individuals,
                          true_delta=true_delta, sampler=sampler)
