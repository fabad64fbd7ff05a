"""One self-contained HTML page per run: settings, data, classifier, and per target every result and figure."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from tspg._io import atomic_write_text
from tspg._names import (
    CLASSIFIER_METRICS,
    DATA_SUMMARY,
    DIRECTIONS,
    ENRICHMENT_RANKED,
    EVALUATION_TSV,
    FIG_CLASSIFIER_HISTORY,
    FIG_HEATMAP_PREFIX,
    FIG_HISTORY,
    FIG_PANEL,
    FIG_TSNE,
    METRICS,
    PLOTS,
    REPORT,
    TOP_GENES,
    enrichment_file,
)

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em 4em;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}nav a{margin-right:1em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.kpi{display:inline-block;margin:.3em 1.5em .3em 0}.kpi b{font-size:1.4em;display:block}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.row{display:flex;flex-wrap:wrap;gap:1em}.row figure{flex:1 1 300px}.note{color:#666;font-size:.9em}
.genes{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        return f"{v:.3g}" if (abs(v) < 1e-3 and v != 0) or abs(v) >= 1e4 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _table(frame: pd.DataFrame, index: bool = False, max_rows: int | None = None) -> str:
    """An HTML table (numbers right-aligned, 3 significant digits for small floats)."""
    if max_rows is not None:
        frame = frame.head(max_rows)
    if index:
        frame = frame.reset_index()
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for v in rec:
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_e(_fmt(v))}</td>' if num else f"<td>{_e(_fmt(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _image(path: Path, caption: str) -> str:
    """An <img> with the PNG embedded as a data URI (the page needs no other file)."""
    if not path.exists():
        return f'<p class="note">({_e(caption)}: no figure; run <code>tspg plot</code>.)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _read_tsv(path: Path, **kw) -> pd.DataFrame | None:  # noqa: ANN003
    return pd.read_csv(path, sep="\t", **kw) if path.exists() else None


def _kpis(items: list[tuple[str, str]]) -> str:
    return "".join(f'<span class="kpi"><b>{_e(v)}</b>{_e(k)}</span>' for k, v in items)


def _settings(manifest: dict) -> str:
    cfg = manifest.get("config", {})
    inputs = manifest.get("inputs", {})
    rows = [("tspg version", manifest.get("tspg_version", "")), ("seed", manifest.get("seed", "")),
            ("data", inputs.get("data", "")), ("labels", inputs.get("labels") or inputs.get("labels_key") or ""),
            ("gene sets", ", ".join(inputs.get("gene_set_names") or []) or "all genes"),
            ("genes", len(manifest.get("genes", []))), ("classes", len(manifest.get("classes", [])))]
    for k, v in (cfg.get("classifier") or {}).items():
        rows.append((f"classifier {k}", v))
    for k, v in (cfg.get("generator") or {}).items():
        if k == "w_norm" and v is None:
            v = f"1/sqrt(genes) = {1 / max(1, len(manifest.get('genes', []))) ** 0.5:.4g}"
        rows.append((f"generator {k}", v))
    rows += [("test share", cfg.get("test_size", "")), ("validation share", cfg.get("val_size", "")),
             ("versions", ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()))]
    frame = pd.DataFrame(rows, columns=["setting", "value"])
    frame["value"] = frame["value"].map(lambda v: "" if v is None else str(v))
    return _table(frame)


def _data_summary(out: Path, manifest: dict) -> str:
    summary = _read_tsv(out / DATA_SUMMARY)
    split = manifest.get("split", {})
    counts = ", ".join(f"{len(split.get(p, []))} {p}" for p in ("train", "val", "test"))
    text = (f"<p>{len(manifest.get('split_order', []))} samples ({counts}), {len(manifest.get('genes', []))} genes, "
            f"{len(manifest.get('classes', []))} classes. The validation part selects checkpoints; every figure "
            "below labelled held-out comes from the test part only.</p>")
    return text + (_table(summary) if summary is not None else "")


def _classifier(out: Path) -> str:
    path = out / CLASSIFIER_METRICS
    if not path.exists():
        return '<p class="note">No classifier metrics.</p>'
    m = json.loads(path.read_text(encoding="utf-8"))
    kpi = _kpis([("held-out accuracy", f"{m['accuracy']:.3f}"), ("held-out samples", str(m["n_test"])),
                 ("best epoch", f"{m.get('best_epoch')} of {m.get('epochs_trained')}")])
    per_class = pd.DataFrame(list(m.get("per_class_accuracy", {}).items()), columns=["class", "held-out accuracy"])
    conf = m.get("confusion")
    conf_html = ""
    if conf:
        frame = pd.DataFrame(conf["matrix"], index=conf["classes"], columns=conf["classes"])
        frame.index.name = "true \\ predicted"
        conf_html = "<details><summary>Confusion matrix (held-out)</summary>" + _table(frame, index=True) + "</details>"
    return (kpi + _table(per_class) + conf_html
            + _image(out / PLOTS / f"{FIG_CLASSIFIER_HISTORY}.png", "Classifier training history"))


def _genes_tables(folder: Path, metrics: dict) -> str:
    top = _read_tsv(folder / TOP_GENES, index_col=0)
    if top is None or "consensus_up" not in metrics:
        return '<p class="note">No top genes yet (run <code>tspg genes</code>).</p>'
    k = metrics.get("top_k", 20)
    parts = [f"<p>Each sample's {k} most raised and {k} most lowered genes (ranked in "
             f"{'original' if metrics.get('rank_units', 'expr') == 'expr' else 'scaled'} units). "
             f"<b>{metrics.get('unique_top_up')}</b> distinct genes appear in any sample's up list and "
             f"<b>{metrics.get('unique_top_down')}</b> in any down list (the paper's consistency figure: the fewer, "
             "the more consistent the transition).</p><div class='row'>"]
    for direction in DIRECTIONS:
        genes = metrics.get(f"consensus_{direction}", [])
        sub = top.reindex(genes)[[f"count_{direction}", f"fraction_{direction}", "mean_perturbation"]].reset_index()
        sub.columns = ["gene", "samples", "fraction", "mean perturbation"]
        parts.append(f"<div><h4>Consensus top {len(genes)} {direction}</h4>{_table(sub)}</div>")
    parts.append("</div>")
    return "".join(parts)


def _enrichment(folder: Path, n: int = 10) -> str:
    parts = []
    for direction in DIRECTIONS:
        table = _read_tsv(folder / enrichment_file(direction))
        if table is None:
            continue
        shown = table.head(n)[["library", "term", "overlap", "term_size", "p", "q", "genes"]].copy()
        shown["genes"] = shown["genes"].astype(str).str.replace(",", ", ")
        sig = int((table["q"] < 0.05).sum())
        parts.append(f"<h4>Enrichment of the {direction} genes</h4><p>{sig} terms with q &lt; 0.05 "
                     f"(hypergeometric test, Benjamini-Hochberg per library, background: the model's genes); "
                     f"top {len(shown)}:</p>{_table(shown)}")
    ranked = _read_tsv(folder / ENRICHMENT_RANKED)
    if ranked is not None and len(ranked):
        overall = ranked[ranked["source"].astype(str) == "all"]
        for sign, word in ((1, "raised"), (-1, "lowered")):
            side = overall[(overall["nes"] * sign > 0)].head(n)[
                ["library", "term", "size", "nes", "p", "q", "leading_edge"]].copy()
            side["leading_edge"] = [", ".join(str(g).split(",")[:10]) + (" ..." if str(g).count(",") >= 10 else "")
                                    for g in side["leading_edge"]]
            sig = int(((overall["q"] < 0.05) & ((overall["nes"] * sign > 0))).sum())
            parts.append(f"<h4>Ranked enrichment: terms {word} by the transition</h4><p>{sig} terms with q &lt; "
                         "0.05 (preranked GSEA of the mean perturbation over all genes: gseapy, 2,000 "
                         "permutations, GSEA's FDR q; per source class in "
                         f"<code>{ENRICHMENT_RANKED}</code>); top {len(side)}:</p>{_table(side)}")
    return "".join(parts) or '<p class="note">No enrichment (pass <code>--enrich-gmt</code>).</p>'


def _evaluation(folder: Path) -> str:
    table = _read_tsv(folder / EVALUATION_TSV)
    if table is None:
        return ""
    from tspg.tl import HEADLINE_METRICS, behind_sentence
    from tspg.tl import METRICS as METRIC_INFO

    verdict = ""
    if "source" in table.columns:
        text = _e(behind_sentence(table)).replace("**", "<strong>", 1).replace("**", "</strong>", 1)
        verdict = f'<p class="note">{text}</p>'
        table = table[table["source"] == "all"].drop(columns="source")
    cols = ["method", "n", *[c for c in HEADLINE_METRICS if c in table.columns]]
    legend = "".join(f"<li><code>{_e(c)}</code>: {_e(METRIC_INFO[c].description)}"
                     + ("" if METRIC_INFO[c].better == "neither" else f" ({_e(METRIC_INFO[c].better)} is better)")
                     + "</li>" for c in cols[2:] if c in METRIC_INFO)
    return ("<h3>Evaluation on held-out samples: TSPG against baselines</h3>"
            "<p>Every method perturbs the same held-out samples (not of the target class); "
            "<code>real_target_train</code> is the floor: real target training samples against held-out target "
            "samples (its success columns: the share of the real held-out target samples each classifier calls "
            "the target). Independent classifiers (logistic regression, kNN) never saw the generator.</p>"
            + _table(table[cols]) + verdict + f"<details><summary>Metrics</summary><ul>{legend}</ul></details>")


def _target_section(out: Path, target: str, info: dict) -> str:
    folder = out / info.get("dir", target)
    mpath = folder / METRICS
    metrics = json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {}
    acc = metrics.get("perturbation_accuracy")
    training = metrics.get("training") or info.get("training", {})
    kpi = _kpis([
        ("perturbation accuracy (f)", "n/a" if acc is None else f"{acc:.3f}"),
        ("samples perturbed", f"{metrics.get('n_not_already_target', '?')} of {metrics.get('n_perturbed', '?')} "
                              "not already the target"),
        ("samples perturbed from", {"test": "held-out part", "all": "all samples"}.get(
            str(metrics.get("perturbed_samples", "")), Path(str(metrics.get("perturbed_samples", ""))).name)),
        ("best epoch", f"{training.get('best_epoch', '?')} of {training.get('epochs_trained', '?')}"),
    ])
    by_source = pd.DataFrame([{"source class": s, "samples": v.get("n"),
                               "perturbation accuracy": v.get("perturbation_accuracy")}
                              for s, v in (metrics.get("by_source") or {}).items()])
    plots = folder / PLOTS
    heatmaps = sorted(p for p in plots.glob(f"{FIG_HEATMAP_PREFIX}*.png") if not p.name.endswith("_expr.png")) \
        if plots.is_dir() else []
    heat_html = "".join(_image(p, f"Heatmap {p.stem.removeprefix(FIG_HEATMAP_PREFIX)} (scaled units; the "
                                  "original-units version is beside it in the plots folder)") for p in heatmaps[:3])
    anchor = _e(info.get("dir", target))
    return (f'<h2 id="t-{anchor}">Target: {_e(target)}</h2>{kpi}'
            + (_table(by_source) if len(by_source) else "")
            + _image(plots / f"{FIG_TSNE}.png", "t-SNE: original samples (dots, by class), perturbed samples (crosses, "
                     "coloured by source class) joined to their original positions (circles)")
            + "<h3>Per-sample heatmaps</h3><p class='note'>Columns: the sample X, its perturbation P, X + P and the "
              "target's training mean mu_T; genes sorted by P (top and bottom 20 where there are more than 60).</p>"
            + f"<div class='row'>{heat_html}</div>"
            + _image(plots / f"{FIG_PANEL}.png", "One sample from each of several source classes to the target")
            + "<h3>Most perturbed genes</h3>" + _genes_tables(folder, metrics)
            + "<h3>Functional enrichment</h3>" + _enrichment(folder)
            + _evaluation(folder)
            + "<h3>Training</h3>"
            + _image(plots / f"{FIG_HISTORY}.png", "Generator losses and validation scores per epoch "
                     "(dashed: the epoch kept)"))


def build_report(out: str | Path) -> str:
    """The HTML text of a run folder's report (every image embedded).

    Parameters
    ----------
    out
        A run folder (with ``manifest.json``).

    Returns
    -------
    The page.
    """
    out = Path(out)
    from tspg.model import read_manifest

    manifest = read_manifest(out)
    targets = manifest.get("targets", {})
    nav = "".join(f'<a href="#t-{_e(i.get("dir", t))}">{_e(t)}</a>' for t, i in targets.items())
    data_name = Path(manifest.get("inputs", {}).get("data", "")).name
    body = (f"<h1>tspg report: {_e(out.resolve().name)}</h1>"
            f"<p>Transcriptome State Perturbation Generator run on {_e(data_name)}"
            f"; targets: {_e(', '.join(targets) or 'none')}.</p>"
            '<nav><a href="#settings">Settings</a><a href="#data">Data</a><a href="#classifier">Classifier</a>'
            f"{nav}</nav>"
            f'<h2 id="settings">Run settings</h2>{_settings(manifest)}'
            f'<h2 id="data">Data</h2>{_data_summary(out, manifest)}'
            f'<h2 id="classifier">Classifier</h2>{_classifier(out)}'
            + "".join(_target_section(out, t, i) for t, i in targets.items()))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tspg report: {_e(out.resolve().name)}'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style>'
            f"</head><body><main>{body}</main></body></html>\n")


def write_report(out: str | Path) -> Path:
    """Write ``OUT/report.html`` (atomically) and return its path."""
    out = Path(out)
    return atomic_write_text(out / REPORT, build_report(out))


#: Sorts a table by the clicked header (numbers as numbers, empty cells last); no external script.
_SORT_JS = """
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const up = th.dataset.order !== "asc"; th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = up ? "asc" : "desc";
  const key = r => { const t = r.cells[col].dataset.v ?? r.cells[col].textContent; const n = parseFloat(t);
    return t === "" ? null : (isNaN(n) ? t.toLowerCase() : n); };
  rows.sort((a, b) => { const x = key(a), y = key(b); if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
"""


def build_sweep_page(table: pd.DataFrame, name: str, targets: list[str], missing: list[str]) -> str:
    """The HTML page of a sweep: its summary table, sortable by any column, each row linked to its run's report.

    Parameters
    ----------
    table
        The sweep's ``summary.tsv`` (columns :data:`tspg.workflow.SUMMARY_COLUMNS`; ``report`` is a relative link).
    name
        The sweep folder's name (the page title).
    targets
        The targets as the sweep was given them.
    missing
        Gene sets not finished (named in a note).
    """
    shown = [c for c in table.columns if c != "report"]
    head = "".join(f'<th title="click to sort">{_e(c)}</th>' for c in shown)
    rows = []
    for rec in table.to_dict("records"):
        cells = []
        for c in shown:
            v = rec[c]
            if isinstance(v, float) and v != v:
                v = ""
            num = isinstance(v, int | float) and not isinstance(v, bool)
            text = _e(_fmt(v))
            if c == "gene_set" and isinstance(rec.get("report"), str) and rec["report"]:
                text = f'<a href="{_e(rec["report"])}">{text}</a>'
            cells.append(f'<td class="num" data-v="{_e(v)}">{text}</td>' if num else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = (f'<p class="note">Not finished (left out): {_e(", ".join(missing))}; run the same sweep command again '
            "to finish them.</p>" if missing else "")
    n_sets = table["gene_set"].nunique() if len(table) else 0
    body = (f"<h1>tspg sweep: {_e(name)}</h1>"
            f"<p>{n_sets} gene set(s) x targets {_e(', '.join(targets))}: {len(table)} row(s). Energy distances are "
            "to real held-out target samples in PCA (floor: real vs real; best baseline: the lowest of the "
            "baselines'); c2st_auc 0.5 means indistinguishable; up/down: the ranked enrichment's first term each "
            "way. Click a column to sort, a gene set to open its report.</p>"
            f'{note}<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tspg sweep: {_e(name)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}'
            "th{cursor:pointer}</style></head>"
            f"<body><main>{body}</main><script>{_SORT_JS}</script></body></html>\n")
