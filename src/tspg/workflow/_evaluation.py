"""``tspg evaluate``: TSPG against baselines on the held-out samples, per target (behind ``tspg run`` too)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from tspg._io import atomic_write_text, write_table
from tspg._names import EVALUATION_MD, EVALUATION_TSV, target_dirname
from tspg.data import Dataset, InputError
from tspg.model import TSPG

log = logging.getLogger(__name__)


def _part(model: TSPG, dataset: Dataset, part: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    names = model.split.index[model.split == part]
    return model.scale(dataset.gem.loc[names]), dataset.labels.loc[names].astype(str).to_numpy(), names


def evaluate_targets(model: TSPG, dataset: Dataset, targets: list[str],
                     baselines: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Evaluate each target's generator and the baselines on the run's held-out (test) samples.

    The reference classifiers, centroids, PCA and DE statistics are fitted on the training part only, once for
    all targets; f's calls come from the run's classifier.

    Returns
    -------
    Target -> the table of :func:`tspg.tl.evaluate` (rows: method x source class, plus ``all`` and the floor).
    """
    from tspg import tl
    from tspg.train import predict_logits

    x_train, y_train, _ = _part(model, dataset, "train")
    x_test, y_test, test_names = _part(model, dataset, "test")
    if len(x_test) == 0:
        raise InputError("This run has no held-out samples (test size 0); evaluation needs them.")
    classes = np.asarray(model.classes, dtype=object)

    def classify(v: np.ndarray) -> np.ndarray:
        return classes[predict_logits(model.classifier, v, device=model.device).argmax(1).numpy()]

    refs = tl.fit_references(x_train, y_train, classes=list(model.classes), seed=model.seed)
    frames = {}
    for t in targets:
        seed = model.target_seed(t)
        result = model.perturb(dataset.gem.loc[test_names], t, labels=dataset.labels.loc[test_names])
        methods = {"tspg": result.x_adv_scaled,
                   **tl.perturb_baselines(x_train, y_train, x_test, y_test, t, names=baselines, seed=seed)}
        frames[t] = tl.evaluate(refs, x_test, y_test, t, methods, classify=classify, seed=seed)
    return frames


def headline(frame: pd.DataFrame, method: str = "tspg") -> dict:
    """The figures ``tspg run`` prints, each realism figure with the best baseline's value and name.

    Success under f and the independent classifiers, each with its recall of the real held-out target samples
    (``success_f_floor`` and so on: what a perfect transition would get); energy distance (PCA and gene space, with
    the floor) and the two-sample test AUC.
    """
    from tspg.tl import ALL, FLOOR, best_baseline

    rows = frame[frame["source"] == ALL].set_index("method")
    out: dict = {k: float(rows.loc[method, k]) for k in (*HEADLINE_SUCCESS, *HEADLINE_REALISM)
                 if method in rows.index and k in rows.columns}
    if FLOOR in rows.index:
        out["energy_distance_floor"] = float(rows.loc[FLOOR, "energy_distance"])
        if "energy_distance_genes" in rows.columns:
            out["energy_distance_genes_floor"] = float(rows.loc[FLOOR, "energy_distance_genes"])
        # the classifiers' recall of the real held-out target samples: a perfect transition's success
        out.update({f"{k}_floor": float(rows.loc[FLOOR, k]) for k in HEADLINE_SUCCESS
                    if k in rows.columns and not pd.isna(rows.loc[FLOOR, k])})
    for k in HEADLINE_REALISM:
        best = best_baseline(frame, k) if k in rows.columns else None
        if best is not None:
            out[f"{k}_best_baseline"] = best
    return out


#: The realism figures of the headline, each shown with the best baseline's.
HEADLINE_REALISM = ("energy_distance", "energy_distance_genes", "c2st_auc")
#: The success figures of the headline (f, then the independent classifiers), each with the real samples' recall.
HEADLINE_SUCCESS = ("success_f", "success_logreg", "success_knn")


def evaluate_phase(model: TSPG, dataset: Dataset, out: Path, targets: list[str]) -> dict[str, dict[str, float]]:
    """Write ``<target>/evaluation.tsv`` for ``targets`` and ``evaluation.md`` for every evaluated target.

    Returns
    -------
    Target -> its headline figures (see :func:`headline`).
    """
    from tspg.workflow._memory import release_memory

    release_memory()
    frames = evaluate_targets(model, dataset, targets)
    release_memory()
    for t, frame in frames.items():
        write_table(frame, out / target_dirname(t) / EVALUATION_TSV, index=False)
    # evaluation.md covers every target of the run that has an evaluation, not only those just evaluated
    write_evaluation_md(out, sorted(model.generators), frames)
    heads = {t: headline(f) for t, f in frames.items()}
    for t, h in heads.items():
        log.info("target '%s': %s", t, headline_text(h))
    return heads


def write_evaluation_md(out: Path, targets: list[str], frames: dict[str, pd.DataFrame] | None = None) -> None:
    """Write the run's ``evaluation.md`` for those of ``targets`` that have an evaluation.

    A target's table is its frame in ``frames``, else its ``evaluation.tsv``; a target with neither is left out,
    and where none has one the file is removed (a retrained generator's old figures must not stay there).
    """
    from tspg import tl

    every = {}
    for t in targets:
        path = out / target_dirname(t) / EVALUATION_TSV
        if frames is not None and t in frames:
            every[t] = frames[t]
        elif path.exists():
            every[t] = pd.read_csv(path, sep="\t", dtype={"method": str, "source": str})
    if every:
        atomic_write_text(out / EVALUATION_MD, tl.evaluation_markdown(every))
    else:
        (out / EVALUATION_MD).unlink(missing_ok=True)


def headline_text(h: dict) -> str:
    """One line of :func:`headline`'s figures, each realism figure beside the best baseline's."""
    nan = float("nan")

    def beside(key: str) -> str:
        best = h.get(f"{key}_best_baseline")
        return f"{h.get(key, nan):.3g}" + (f" (best baseline {best[0]} {best[1]:.3g})" if best else "")

    real = [h.get(f"{k}_floor") for k in HEADLINE_SUCCESS]
    recall = ("" if any(v is None for v in real) else
              " (real held-out target samples: {:.3f}, {:.3f}, {:.3f})".format(*real))
    return (f"called the target by f {h.get('success_f', nan):.3f}, by independent logistic regression "
            f"{h.get('success_logreg', nan):.3f} and kNN {h.get('success_knn', nan):.3f}{recall}; energy distance to "
            f"real target samples {beside('energy_distance')} in PCA (floor, real vs real: "
            f"{h.get('energy_distance_floor', nan):.3g}), {beside('energy_distance_genes')} in the gene space "
            f"(floor {h.get('energy_distance_genes_floor', nan):.3g}); "
            f"two-sample test AUC {beside('c2st_auc')} (0.5: indistinguishable)")
