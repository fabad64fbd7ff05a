"""One patient (n = 1): which genes must change in THIS sample to reach the target, beside the cohort's genes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from tspg._io import atomic_write_text, write_json, write_table
from tspg._names import DIRECTIONS, METRICS, PATIENT_PAGE, PATIENTS, safe_name, target_dirname
from tspg.data import TRANSFORM_UNITS, Dataset
from tspg.model import TSPG
from tspg.workflow._run import DataSpec, PerturbSpec, load_perturb_data

log = logging.getLogger(__name__)


def patient_folder(out: Path, target: str, sample: str) -> Path:
    """``OUT/<target>/patients/<sample>/``.

    A name that is not file-safe as it is gets its file-safe form plus 8 hex digits of its SHA-1, so that two
    samples never share a folder (``Patient 1`` and ``Patient_1`` would both be ``Patient_1``); so does a name
    whose folder holds another sample's outputs (``patient_a`` beside ``Patient_A`` on a file system that does
    not tell case apart).
    """
    import hashlib

    root = out / target_dirname(target) / PATIENTS
    name = safe_name(sample).strip(".") or "sample"
    hashed = name + "-" + hashlib.sha1(str(sample).encode("utf-8")).hexdigest()[:8]
    if name != str(sample):
        return root / hashed
    try:
        other = json.loads((root / name / "summary.json").read_text(encoding="utf-8")).get("sample")
    except (OSError, ValueError, AttributeError):
        other = None
    return root / (hashed if other is not None and str(other) != str(sample) else name)


def _cohort_consensus(out: Path, target: str) -> dict[str, list[str]] | None:
    """The cohort's consensus top genes of ``target`` (``metrics.json`` after ``tspg genes``), if there are any."""
    path = out / target_dirname(target) / METRICS
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "consensus_up" not in metrics:
        return None
    return {d: list(metrics.get(f"consensus_{d}", [])) for d in DIRECTIONS}


def patient_phase(model: TSPG, dataset: Dataset, target: str, out: Path, spec: PerturbSpec, data_spec: DataSpec,
                  k: int = 20, gmt_paths: list[str] | None = None, figures: bool = True,
                  loaded: tuple[pd.DataFrame, pd.Series | None, str] | None = None) -> dict:
    """Perturb the one sample of ``spec.data`` towards ``target`` and write its own outputs and page.

    Written to :func:`patient_folder` (the cohort's files of the target are left as they are):
    ``perturbation.tsv`` (per gene: the sample, its perturbed form and the perturbation, in expression and scaled
    units), ``top_genes.tsv`` (its ``k`` most raised and lowered genes, each marked ``in_cohort`` when it is among
    the cohort's consensus top genes of that direction, else ``specific``), ``probabilities.tsv`` (f's class
    probabilities before and after), with ``gmt_paths`` ``enrichment_up.tsv``, ``enrichment_down.tsv`` (its top
    genes, :func:`tspg.tl.enrich`) and ``enrichment_ranked.tsv`` (its whole perturbation,
    :func:`tspg.tl.enrich_ranked`), ``heatmap.png``/``.svg``, ``summary.json`` and ``patient.html``.
    ``loaded`` is :func:`~tspg.workflow._run.load_perturb_data`'s result for ``spec`` where the caller has read it
    already; by default ``spec.data`` is read here.

    Returns
    -------
    The summary (also ``summary.json``).
    """
    from tspg import pl, tl
    from tspg.data import read_gmt
    from tspg.workflow._figures import target_means

    gem, labels, source = loaded if loaded is not None else load_perturb_data(
        spec, data_spec, model.genes, model.impute, model.transform)
    if len(gem) != 1:
        raise ValueError("patient_phase perturbs exactly one sample")
    sample = str(gem.index[0])
    result = model.perturb(gem, target, labels=labels, source=source, external=True)
    folder = patient_folder(out, target, sample)
    folder.mkdir(parents=True, exist_ok=True)
    genes = list(model.genes)
    table = pd.DataFrame({
        "x": result.scaler.inverse_transform(result.x_scaled)[0], "x_adv": result.perturbed_expr.iloc[0],
        "perturbation": result.perturbation_expr.iloc[0],
        "perturbation_scaled": result.perturbation_scaled.iloc[0]}, index=pd.Index(genes, name="gene"))
    write_table(table, folder / "perturbation.tsv")
    cohort = _cohort_consensus(out, target)
    top = tl.top_genes_per_sample(result.perturbation_expr, None, k=k)[["direction", "rank", "gene", "perturbation"]]
    top["in_cohort"] = [cohort is not None and g in cohort[d] for d, g in zip(top["direction"], top["gene"],
                                                                              strict=True)]
    top["specific"] = ~top["in_cohort"] if cohort is not None else pd.NA
    write_table(top, folder / "top_genes.tsv", index=False)
    probs = pd.DataFrame({"before": result.proba_before[0], "after": result.proba_after[0]},
                         index=pd.Index(model.classes, name="class"))
    write_table(probs, folder / "probabilities.tsv")
    pred = result.predictions.iloc[0]
    summary = {
        "sample": sample, "target": target, "expression_units": TRANSFORM_UNITS[model.transform],
        "predicted_before": str(pred["predicted_before"]), "predicted_after": str(pred["predicted_after"]),
        "prob_target_before": round(float(pred["prob_target_before"]), 6),
        "prob_target_after": round(float(pred["prob_target_after"]), 6),
        "called_target_after": bool(pred["predicted_after"] == target), "top_k": k,
        "cohort_consensus": cohort is not None,
        **{f"top_{d}": top.loc[top["direction"] == d, "gene"].tolist() for d in DIRECTIONS},
        **({f"specific_{d}": top.loc[(top["direction"] == d) & top["specific"].astype(bool), "gene"].tolist()
            for d in DIRECTIONS} if cohort is not None else {}),
    }
    enrichment: dict[str, pd.DataFrame] = {}
    if gmt_paths:
        libraries = {Path(p).name: read_gmt(p, genes=genes) for p in gmt_paths}
        for d in DIRECTIONS:
            enrichment[d] = tl.enrich(summary[f"top_{d}"], genes, libraries)
            write_table(enrichment[d], folder / f"enrichment_{d}.tsv", index=False)
        enrichment["ranked"] = tl.enrich_ranked(result.perturbation_expr.iloc[0], libraries)
        write_table(enrichment["ranked"], folder / "enrichment_ranked.tsv", index=False)
    heatmap = None
    if figures:
        mu_scaled, _ = target_means(model, dataset, target)
        fig = pl.heatmap(result.x_scaled[0], result.x_adv_scaled[0] - result.x_scaled[0], mu_scaled, genes, sample,
                         summary["predicted_before"], target)
        heatmap = pl.save_figure(fig, folder / "heatmap")[0]
    write_json(folder / "summary.json", summary)
    atomic_write_text(folder / PATIENT_PAGE, patient_page(summary, top, cohort, probs, enrichment, heatmap))
    log.info("sample '%s' -> '%s': f calls it %s (p_target %.3f), then %s (p_target %.3f); %s", sample, target,
             summary["predicted_before"], summary["prob_target_before"], summary["predicted_after"],
             summary["prob_target_after"], folder / PATIENT_PAGE)
    return summary


def patient_page(summary: dict, top: pd.DataFrame, cohort: dict[str, list[str]] | None, probs: pd.DataFrame,
                 enrichment: dict[str, pd.DataFrame], heatmap: Path | None) -> str:
    """The one-sample page: its call before and after, its genes beside the cohort's, enrichment, heatmap."""
    from tspg.report._html import _CSS, _e, _image, _kpis, _table

    s = summary
    body = [f"<h1>tspg: sample {_e(s['sample'])} &rarr; {_e(s['target'])}</h1>",
            _kpis([("f's call before", s["predicted_before"]), ("after", s["predicted_after"]),
                   ("p(target) before", f"{s['prob_target_before']:.3f}"),
                   ("p(target) after", f"{s['prob_target_after']:.3f}")]),
            f"<p class=\"note\">Perturbations in {_e(s['expression_units'])}.</p>"]
    for d in DIRECTIONS:
        mine = top[top["direction"] == d].reset_index(drop=True)
        side = pd.DataFrame({"rank": mine["rank"], "this sample's gene": mine["gene"],
                             "perturbation": mine["perturbation"].astype(float)})
        if cohort is not None:
            side["specific to this sample"] = ["yes" if v else "" for v in mine["specific"].astype(bool)]
            theirs = cohort[d] + [""] * max(0, len(side) - len(cohort[d]))
            side["cohort consensus gene"] = theirs[:len(side)]
        body.append(f"<h2>Top {len(side)} {'raised' if d == 'up' else 'lowered'} genes</h2>{_table(side)}")
    if cohort is None:
        body.append('<p class="note">No cohort consensus for this target yet (run <code>tspg genes</code> on the '
                    "run), so no gene is marked as specific.</p>")
    probs_shown = probs.reset_index()
    body.append(f"<h2>Class probabilities (f)</h2>{_table(probs_shown)}")
    for key, title in (("up", "its raised genes"), ("down", "its lowered genes")):
        if key in enrichment and len(enrichment[key]):
            shown = enrichment[key].head(10)[["library", "term", "overlap", "term_size", "p", "q"]]
            body.append(f"<h2>Enrichment of {title}</h2>{_table(shown)}")
    ranked = enrichment.get("ranked")
    if ranked is not None and len(ranked):
        shown = ranked.head(10)[["library", "term", "size", "nes", "p", "q"]]
        body.append(f"<h2>Ranked enrichment of its whole perturbation</h2>{_table(shown)}")
    if heatmap is not None:
        body.append(_image(heatmap, f"Heatmap of {s['sample']}: X, P, X + P and the target's mean (scaled units)"))
    title = f"tspg: {_e(s['sample'])} to {_e(s['target'])}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body><main>{''.join(body)}</main></body></html>\n")


def single_sample(spec: PerturbSpec, data_spec: DataSpec, model: TSPG) -> bool:
    """Whether ``--perturb-data`` holds exactly one sample (the one-patient path of ``tspg perturb``)."""
    if spec.data is None:
        return False
    gem, _, _ = load_perturb_data(spec, data_spec, model.genes, model.impute, model.transform)
    return len(gem) == 1

