"""The ``tspg`` command-line app: parses options, calls the Python API, turns known errors into one line.

Heavy modules (torch, pandas) are imported inside the commands so that ``tspg --help`` starts fast.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import click

from tspg._options import (
    CHECKPOINT_RULES,
    DISC_REAL,
    G_INITS,
    GENE_ID_COLUMNS,
    GENERATOR_KINDS,
    IMPUTE_METHODS,
    PAPER_LOSS,
    PERTURB_WHICH,
    PRECISIONS,
    PRIOR_ASSIGNS,
    PRIOR_COVARIANCES,
    PRIOR_MARGINALS,
    PRIOR_SHRINKS,
    PRIORS,
    RANK_UNITS,
    TARGET_COV_MODELS,
    TD_LOSSES,
    TRANSFORMS,
    TSNE_MODES,
)

log = logging.getLogger("tspg")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """``warnings.showwarning`` of the command: a warning becomes one log line, a library's at DEBUG only.

    tspg's own code warns through ``logging``; a Python warning raised by a library (pandas, scikit-learn,
    anndata, torch) is about that library's internals, which the command's user cannot act on, so its text goes
    to the ``tspg.library`` logger at DEBUG (not shown at the command's INFO level) instead of the terminal.
    """
    text = str(message).strip().splitlines()[0][:300] if str(message).strip() else category.__name__
    origin = Path(filename).resolve()
    own = Path(__file__).resolve().parent in origin.parents
    logger = log if own else logging.getLogger("tspg.library")
    logger.log(logging.WARNING if own else logging.DEBUG, "%s (%s, %s:%d)", text, category.__name__, origin.name,
               lineno)


def _setup_logging(quiet: bool) -> None:
    import warnings

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", force=True)
    logging.getLogger("tspg").setLevel(logging.WARNING if quiet else logging.INFO)
    logging.getLogger("tspg.library").setLevel(logging.WARNING)  # DEBUG records of library warnings: not shown
    # the command's log is tspg's own: openTSNE logs its choices at INFO and its adjustments (a lowered
    # perplexity) at WARNING; tspg chooses those itself, so only its errors would be news
    for name in ("openTSNE",):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.showwarning = _show_warning


#: Options several commands share (a click option decorator makes a new option each time it is applied).
_DEVICE = click.option("--device", default="auto", show_default=True,
                       help="Torch device: auto (CUDA when present, else CPU), cpu, cuda, cuda:N.")
_QUIET = click.option("--quiet", "-q", is_flag=True, help="Warnings only.")


def _data_options(required: bool, sweep: bool = False) -> Callable:
    """Options that say where the labelled data are and how to read them (``sweep``: each --gene-set a run)."""
    opts = [
        click.option("--data", "data", type=click.Path(dir_okay=False), required=required,
                     help="GEM file: .tsv/.txt(.gz) or .csv (samples x genes, first column sample ids), .npy "
                          "(+ .rownames.txt/.colnames.txt), .parquet, .gct (genes x samples) or .h5ad."),
        click.option("--labels", type=click.Path(dir_okay=False),
                     help="Labels: two columns 'sample<TAB>label' (header optional) or a GSEA .cls file."),
        click.option("--labels-key", help="For .h5ad data: the .obs column holding the labels (instead of --labels)."),
        click.option("--transpose", is_flag=True, help="The text/.npy/.parquet GEM is genes x samples."),
        click.option("--layer", help="For .h5ad data: use this layer instead of .X."),
        click.option("--use-raw", is_flag=True, help="For .h5ad data: use .raw.X instead of .X."),
        click.option("--gene-sets", type=click.Path(dir_okay=False),
                     help="GMT file of gene sets (with or without the description column)."),
        click.option("--gene-set", "gene_set_names", multiple=True,
                     help="A gene set of --gene-sets to sweep (repeatable; each is its own run)." if sweep else
                     "Use the genes of this set from --gene-sets (repeat for a union). Default: all genes."),
        click.option("--gene-id-column", type=click.Choice(list(GENE_ID_COLUMNS)), default=None,
                     help="For .gct data: the column naming the genes, Name (default; GTEx: versioned Ensembl IDs) "
                          "or Description (GTEx: symbols; rows sharing a symbol are merged into their mean, rows "
                          "without one, e.g. 'na' or '---', are left out)."),
        click.option("--allow-missing-labels", is_flag=True,
                     help="Use only the samples that both the GEM and the labels have, instead of stopping."),
        click.option("--impute", type=click.Choice(list(IMPUTE_METHODS)), default=None,
                     help="Missing/infinite values: stop (none, the default), drop genes that have any, or fill with "
                          "zero or the training part's per-gene mean/median."),
    ]

    def wrap(f: Callable) -> Callable:
        for o in reversed(opts):
            f = o(f)
        return f

    return wrap


def _train_options(f: Callable) -> Callable:
    opts = [
        click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
                     help="Seed of split, weights and sampling."),
        click.option("--test-size", type=float, default=0.2, show_default=True,
                     help="Held-out share of each class (perturbed and reported, never trained on)."),
        click.option("--val-size", type=float, default=0.1, show_default=True,
                     help="Share of the rest kept for early stopping and checkpoint choice."),
        click.option("--classifier-epochs", type=int, default=None,
                     help="Maximum classifier epochs (default 100; early stopping on validation loss)."),
        click.option("--transform", type=click.Choice(list(TRANSFORMS)), default="none", show_default=True,
                     help="Transform of the expression values before scaling: log2p1 (log2(x+1)) or log1p (ln(x+1)) "
                          "for linear counts or intensities. Recorded in the run and applied to every later input; "
                          "expression-unit outputs are then in the transformed units."),
        _DEVICE,
        click.option("--precision", type=click.Choice(list(PRECISIONS)), default=None,
                     help="Arithmetic of training, classifier and generators: auto (bf16 where it is native, i.e. on "
                          "GPUs and CPUs with AVX512-BF16/AMX, else fp32), fp32, or bf16 autocast (emulated and "
                          "slower elsewhere). Default: fp32 for the classifier, auto for the generators."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars, warnings only."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _generator_options(f: Callable) -> Callable:
    opts = [
        click.option("--generator", "generator_kind", type=click.Choice(list(GENERATOR_KINDS)), default="per-target",
                     show_default=True,
                     help="per-target: one generator per target (the paper's); conditional: one generator G(x, t) "
                          "for every target, trained once (with --td-loss energy or mmd and --disc-real target)."),
        click.option("--epochs", type=int, default=None, help="Maximum generator epochs (default 150)."),
        click.option("--batch-size", type=int, default=None, help="Generator mini-batch size (default 128)."),
        click.option("--target-cov", type=click.Choice(list(TARGET_COV_MODELS)), default=None,
                     help="Model of the target class distribution for L_td (default full: the exact sample "
                          "covariance)."),
        click.option("--kappa", type=float, default=None, help="Margin of L_adv on the logits."),
        click.option("--w-gan", type=float, default=None, help="Weight of L_GAN."),
        click.option("--w-adv", type=float, default=None, help="Weight of L_adv."),
        click.option("--w-norm", type=float, default=None, help="Weight of L_norm."),
        click.option("--w-td", type=float, default=None, help="Weight of L_td."),
        click.option("--w-ind", type=float, default=None,
                     help="Weight of L_ind (default 1): each sample's squared distance to the mean perturbation of "
                          "the batch's samples that f calls its class; 0 turns it off."),
        click.option("--td-loss", type=click.Choice(list(TD_LOSSES)), default=None,
                     help="Target-distribution term L_td: energy (default: energy distance between the batch of "
                          "perturbed samples and a batch of real target samples), mmd, sinkhorn, or draw (the "
                          "paper's L1 distance to one random draw of N(mu_t, Sigma_t) per sample)."),
        click.option("--disc-real", type=click.Choice(list(DISC_REAL)), default=None,
                     help="Real samples of the discriminator: target (default: the target class's training "
                          "samples) or all (every class, as in the paper)."),
        click.option("--checkpoint", "checkpoint_rule", type=click.Choice(list(CHECKPOINT_RULES)), default=None,
                     help="Which epoch's generator is kept: realism (default: validation accuracy, then the energy "
                          "distance of the perturbed validation samples to the target class; with a prior, the "
                          "prior alone stays unless training calls more samples or lowers that distance by 2 "
                          "bootstrap standard errors, and no epoch that raises it by 2 is kept; with fewer than 3 "
                          "validation target samples, the calls also count training samples of other classes moved "
                          "by their cross-fitted prior) or margin (tspg 0.1: accuracy, margin, distance to the "
                          "target mean)."),
        click.option("--g-init", type=click.Choice(list(G_INITS)), default=None,
                     help="Generator output layer at start: zero (default: G starts as the identity map) or random "
                          "(the paper's)."),
        click.option("--prior", type=click.Choice(list(PRIORS)), default=None,
                     help="Transport prior of the generator: ot (each sample first moves by the Gaussian "
                          "optimal-transport map of its class onto the target, in a PCA space; G learns the rest), "
                          "mean (the class-mean shift) or none (the paper's G learns it all). Default: ot."),
        click.option("--prior-shrink", type=click.Choice(list(PRIOR_SHRINKS)), default=None,
                     help="Shrink the prior's mean shift per gene, so that genes within the noise of the class "
                          "means stay put: eb (empirical Bayes: each gene's shift by its posterior mean under a "
                          "prior fitted to all genes), js (each gene's shift times max(0, 1 - 1/t^2), t its Welch "
                          "statistic), none (the plain map) or auto (default: eb; with --generator conditional "
                          "each class's mean is shrunk towards the mean of all class means)."),
        click.option("--prior-covariance", type=click.Choice(list(PRIOR_COVARIANCES)), default=None,
                     help="Covariance of each class's Gaussian in the ot prior: blend (its own blended with the "
                          "pooled within-class covariance of all classes, the weight chosen per class by "
                          "cross-validated likelihood: classes that share a covariance move by their mean shift, "
                          "not by the noise of their own estimates), own (each class's own) or auto (default: "
                          "blend)."),
        click.option("--prior-assign", type=click.Choice(list(PRIOR_ASSIGNS)), default=None,
                     help="Which class's map of the prior moves a sample: label (its own class wherever its label "
                          "is known: training, validation and the run's perturbed samples; the nearest class "
                          "centroid for samples without a known label), nearest (always the nearest centroid) or "
                          "auto (default: label)."),
        click.option("--prior-marginals", type=click.Choice(list(PRIOR_MARGINALS)), default=None,
                     help="After the prior's map: zero-inflated (genes where at least 30% of the target's training "
                          "samples are at the gene's lowest value, the dropouts of single-cell data, get each "
                          "class's moved marginal mapped onto the target's, so that moved samples have the "
                          "target's share of zeros; other genes are not changed), none (the map alone) or auto "
                          "(default: zero-inflated; none with --generator conditional)."),
        click.option("--prior-components", type=int, default=None,
                     help="PCA components of the transport prior (default 50)."),
        click.option("--prior-folds", type=int, default=None,
                     help="G trains on each sample moved by a prior fitted without its fold (cross-fitting; "
                          "default 5; 1: the prior of the whole training part)."),
        click.option("--prior-share-low", type=float, default=None,
                     help="During training each sample moves by a random share in [this, 1] of its prior "
                          "displacement, so G learns to finish short moves (default 0.5; 1: the whole move)."),
        click.option("--paper-loss", is_flag=True,
                     help="The paper's generator: --td-loss draw --disc-real all --g-init random --prior none, every "
                          "weight 1 and kappa 0 (with tspg 0.1's --checkpoint margin); other options apply on top."),
        click.option("--patience", type=click.IntRange(0), default=None,
                     help="Stop a generator after this many epochs without a clear gain of its validation score "
                          "(higher accuracy, or an energy distance lower by more than 1%); the best epoch is kept. "
                          "Default 10; 0 runs every epoch."),
        click.option("--stop-at-accuracy", type=click.FloatRange(0.0, 1.0), default=None,
                     help="Stop a generator early once its validation perturbation accuracy has been at least this "
                          "for 10 epochs in a row (--epochs stays the maximum). Default: off."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _perturb_options(f: Callable) -> Callable:
    opts = [
        click.option("--perturb", "perturb_which", type=click.Choice(list(PERTURB_WHICH)), default="test",
                     show_default=True, help="Perturb the held-out samples (test) or every sample (all)."),
        click.option("--perturb-data", type=click.Path(dir_okay=False),
                     help="Perturb the samples of this GEM instead (same format options as --data)."),
        click.option("--perturb-labels", type=click.Path(dir_okay=False),
                     help="Labels of --perturb-data (optional): per-source metrics, and each labelled sample "
                          "moves by its own class's map of the prior (--prior-assign)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


#: API names whose flag is not ``--`` plus the name with dashes (None: the command has no such flag, so the
#: message keeps the API's words). Used to word :class:`tspg.data.InputError` messages for the command line.
FLAGS: dict[str, str | None] = {
    "gene_set_names": "--gene-set",
    "labels": "--labels",
    "ClassifierConfig.epochs": "--classifier-epochs",
    "ClassifierConfig.precision": "--precision",
    "checkpoint": "--checkpoint",
    "stop_accuracy": "--stop-at-accuracy",
    "zero_init": "--g-init",
    "perturb_data": "--perturb-data",
    "rank_units": "--rank-units",
}
for _name in ("lr_generator", "lr_discriminator", "min_steps_per_epoch", "target_rank",
              "target_shrinkage", "stop_accuracy_epochs", "sinkhorn_reg", "w_mean", "td_smoothing"):
    FLAGS[_name] = None  # GeneratorConfig fields without a flag

#: CLI keyword -> GeneratorConfig field, for the options that set one.
_GENERATOR_FIELDS = {"epochs": "epochs", "batch_size": "batch_size", "target_cov": "target_cov", "kappa": "kappa",
                     "w_gan": "w_gan", "w_adv": "w_adv", "w_norm": "w_norm", "w_td": "w_td", "w_ind": "w_ind",
                     "precision": "precision", "stop_at_accuracy": "stop_accuracy", "td_loss": "td_loss",
                     "disc_real": "disc_real", "checkpoint_rule": "checkpoint", "prior": "prior",
                     "prior_shrink": "prior_shrink", "prior_covariance": "prior_covariance",
                     "prior_assign": "prior_assign", "prior_marginals": "prior_marginals",
                     "prior_components": "prior_components",
                     "prior_folds": "prior_folds", "prior_share_low": "prior_share_low", "patience": "patience"}


def _check_device(device: str) -> None:
    from tspg.train import resolve_device

    resolve_device(device)


def _configs(kw: dict, base=None):  # noqa: ANN001, ANN202
    """The classifier and generator configs of the options (on top of ``base``, a run's generator config).

    The configs validate themselves; their errors name the fields, which the app words as flags (:data:`FLAGS`).
    """
    import dataclasses

    from tspg.train import ClassifierConfig, GeneratorConfig

    if kw.get("device"):
        _check_device(kw["device"])
    cc = {k: kw[k] for k in ("precision",) if kw.get(k) is not None}
    if kw.get("classifier_epochs") is not None:
        cc["epochs"] = kw["classifier_epochs"]
    changes = dict(PAPER_LOSS) if kw.get("paper_loss") else {}
    changes.update({field: kw[opt] for opt, field in _GENERATOR_FIELDS.items() if kw.get(opt) is not None})
    if kw.get("g_init") is not None:
        changes["zero_init"] = kw["g_init"] == "zero"
    gc = dataclasses.replace(base, **changes) if base is not None else GeneratorConfig(**changes)
    if kw.get("generator_kind") == "conditional":  # before anything is trained
        from tspg.train import check_conditional_config

        check_conditional_config(gc)
    return ClassifierConfig(**cc), gc


def _data_spec(kw: dict):  # noqa: ANN202
    from tspg.workflow import DataSpec

    return DataSpec(data=kw["data"], labels=kw.get("labels"), labels_key=kw.get("labels_key"),
                    transpose=kw.get("transpose", False), layer=kw.get("layer"), use_raw=kw.get("use_raw", False),
                    gene_sets=kw.get("gene_sets"), gene_set_names=list(kw.get("gene_set_names") or []),
                    allow_missing_labels=kw.get("allow_missing_labels", False), impute=kw.get("impute") or "none",
                    gene_id_column=kw.get("gene_id_column"))


def _perturb_spec(kw: dict):  # noqa: ANN202
    from tspg.data import InputError
    from tspg.workflow import PerturbSpec

    if kw.get("perturb_labels") and not kw.get("perturb_data"):
        raise InputError("--perturb-labels needs --perturb-data.")
    if kw.get("perturb_data") and kw.get("perturb_which") == "all":
        raise InputError("Choose either --perturb all or --perturb-data, not both.")
    for key in ("perturb_data", "perturb_labels"):
        if kw.get(key) and not Path(kw[key]).exists():
            raise InputError(f"--{key.replace('_', '-')} {kw[key]}: no such file.")
    return PerturbSpec(which=kw.get("perturb_which", "test"), data=kw.get("perturb_data"),
                       labels=kw.get("perturb_labels"))


def _analysis_options(f: Callable) -> Callable:
    opts = [
        click.option("--top-k", type=click.IntRange(1, None), default=20, show_default=True,
                     help="Genes per direction in each sample's top list."),
        click.option("--rank-units", type=click.Choice(list(RANK_UNITS)), default="expr", show_default=True,
                     help="Rank perturbations in original expression units or in scaled units (the paper's)."),
        click.option("--enrich-gmt", multiple=True, type=click.Path(dir_okay=False, exists=True),
                     help="GMT library for enrichment of the consensus top genes (repeatable)."),
        click.option("--enrich-per-source", is_flag=True,
                     help="Also test each source class's own consensus top genes (enrichment_by_source_*.tsv)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _plot_options(f: Callable) -> Callable:
    opts = [
        click.option("--tsne-mode", type=click.Choice(list(TSNE_MODES)), default="project", show_default=True,
                     help="project: fit the t-SNE map on original samples and place perturbed ones into it; "
                          "joint: one map of both (the original tool)."),
        click.option("--tsne-samples", type=click.IntRange(0, None), default=100, show_default=True,
                     help="Perturbed samples shown in the t-SNE at most (random; 0 = all)."),
        click.option("--tsne-classes", type=click.IntRange(0, None), default=10, show_default=True,
                     help="Classes shown in the t-SNE at most, the target included (0 = all)."),
        click.option("--heatmap-samples", multiple=True, default=("3",), show_default=True,
                     help="A number N (N random perturbed samples) or sample names (repeatable) to draw heatmaps of."),
        click.option("--panel-sources", type=click.IntRange(1, None), default=4, show_default=True,
                     help="Source classes side by side in the panel figure."),
        click.option("--no-figures", is_flag=True, help="Skip the figures (the report then has none)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _plot_spec(kw: dict):  # noqa: ANN202
    from tspg.workflow import PlotSpec

    heat = list(kw.get("heatmap_samples") or ("3",))
    chosen: list[str] | int = int(heat[0]) if len(heat) == 1 and heat[0].isdigit() else heat
    return PlotSpec(tsne_mode=kw.get("tsne_mode", "project"), tsne_samples=kw.get("tsne_samples") or None,
                    tsne_classes=kw.get("tsne_classes") or None, heatmap_samples=chosen,
                    panel_sources=kw.get("panel_sources", 4))


def _figures_and_report(out: Path, model, dataset, targets: list[str], kw: dict) -> None:  # noqa: ANN001
    """Draw each target's figures (unless --no-figures), the classifier's history, and write report.html."""
    from tspg.report import write_report
    from tspg.workflow import classifier_plot, plot_phase

    if not kw.get("no_figures"):
        spec = _plot_spec(kw)
        for t in targets:
            plot_phase(model, dataset, out, t, spec)
        classifier_plot(out)
    path = write_report(out)
    log.info("report: %s", path)


def _check_analysis_inputs(kw: dict, perturbed: list[str] | None, targets: list[str], held_out: bool = False
                           ) -> None:
    """Read every --enrich-gmt and check named --heatmap-samples, before any training or perturbing.

    ``perturbed``: the samples the command will perturb (None: not known; ``held_out``: the run's held-out part).
    A bad file or name then costs no time and leaves no half-written outputs.
    """
    from tspg.data import read_gmt

    for path in kw.get("enrich_gmt") or ():
        read_gmt(path)
    if perturbed is not None and not kw.get("no_figures"):
        from tspg.workflow import check_heatmap_names

        hint = "; only the held-out part is perturbed (--perturb all: every sample)" if held_out else ""
        check_heatmap_names(perturbed, _plot_spec(kw), targets, hint)


def _to_perturb(pspec, split, loaded) -> list[str]:  # noqa: ANN001
    """The samples a command perturbs: --perturb-data's, else every sample or the held-out part of ``split``."""
    if loaded is not None:
        return [str(s) for s in loaded[0].index]
    return [str(s) for s in (split.index if pspec.which == "all" else split.index[split == "test"])]


def _analyse(out: Path, target: str, genes: list[str], kw: dict) -> None:
    """Top genes (always) and enrichment (with --enrich-gmt) of one target's perturbations."""
    from tspg.workflow import enrich_phase, genes_phase

    genes_phase(out, target, k=kw["top_k"], rank_units=kw["rank_units"])
    if kw.get("enrich_gmt"):
        enrich_phase(out, target, list(kw["enrich_gmt"]), genes, by_source=kw.get("enrich_per_source", False))
    else:  # enrichment tables of earlier top genes no longer match
        from tspg._names import ENRICHMENT_FILES, target_dirname

        for name in ENRICHMENT_FILES:
            (out / target_dirname(target) / name).unlink(missing_ok=True)


def _print_summary(out: Path, clf: dict | None, per_target: dict[str, dict],
                   evaluation: dict[str, dict] | None = None) -> None:
    from tspg.workflow import headline_text

    lines = []
    if clf is not None:
        lines.append(f"classifier held-out accuracy: {clf['accuracy']:.3f} ({clf['n_test']} samples)")
    for t, m in per_target.items():
        acc = m["perturbation_accuracy"]
        lines.append(f"target {t!r}: perturbation accuracy {'n/a' if acc is None else f'{acc:.3f}'} "
                     f"({m['n_not_already_target']} of {m['n_perturbed']} samples not already the target)")
        h = (evaluation or {}).get(t)
        if h:
            lines.append(f"  held-out: {headline_text(h)}")
    lines.append(f"outputs: {out}")
    click.echo("\n".join(lines))


class _SettingError(click.ClickException):
    """A setting from the environment that tspg cannot use: one line, exit code 2."""

    exit_code = 2


class _App(click.Group):
    """Turns input errors into one line on stderr and exit code 2."""

    def main(self, *args, **kwargs):  # noqa: ANN201, ANN002, ANN003, D102
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("tspg: aborted", err=True)
            sys.exit(1)
        except click.UsageError as exc:
            cmd = exc.ctx.command_path if exc.ctx else "tspg"
            click.echo(f"{cmd}: error: {exc.format_message()} (see '{cmd} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"tspg: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001
            from tspg.data import InputError

            if isinstance(exc, InputError):
                click.echo(f"tspg: error: {exc.cli_message(FLAGS)}", err=True)
                sys.exit(2)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | NotADirectoryError):
                click.echo(f"tspg: error: {exc}", err=True)
                sys.exit(1)
            raise
        if isinstance(rv, int) and rv:
            sys.exit(rv)


@click.group(cls=_App, context_settings=CONTEXT)
@click.version_option(package_name="tspg", prog_name="tspg")
def app() -> None:
    """TSPG: learn which gene expression changes turn one transcriptome state into another.

    \b
    Typical use, all phases at once:
      tspg run --data gem.tsv --labels labels.tsv --target Liver --out runs/liver
    or phase by phase on one run folder:
      tspg train-classifier --data gem.tsv --labels labels.tsv --out runs/r1
      tspg train-generator runs/r1 --target Liver
      tspg perturb runs/r1 --target Liver
    Try it with no input files:  tspg demo --out tspg-demo

    \b
    Environment:
      GOMP_SPINCOUNT=10000    idle threads spin a little before they sleep
                              (default PASSIVE: they sleep at once): shorter
                              steps where the cores are the run's alone,
                              two to three times longer where another busy
                              process shares them (libgomp, Linux)
      OMP_WAIT_POLICY=ACTIVE  threads spin throughout: shorter training
                              steps, but a slower whole run
      TSPG_ONEDNN_FP32=0      keep training's fp32 matrix products in MKL
                              (default 1: oneDNN's kernels where they stay exact fp32)
    """
    from tspg import settings

    try:  # TSPG_ONEDNN_FP32=0 keeps training's fp32 products in torch's default backend
        settings.apply_onednn_environment()
    except ValueError as exc:
        raise _SettingError(str(exc)) from None


def _new_run(out: Path, force: bool, body: Callable[[], None], command: str) -> None:
    """Run ``body`` holding ``out``'s write lock.

    If it fails on bad input before a model is saved, the folder this command created is removed (never one that
    another process holds).
    """
    from tspg._names import CLASSIFIER_WEIGHTS
    from tspg.data import InputError
    from tspg.workflow import RunLockedError, run_lock

    created = not out.exists()
    try:
        with run_lock(out, command):
            body()
    except RunLockedError:
        raise
    except InputError:
        # remove what this command created, unless a trained model was saved there already
        if created and out.exists() and not (out / CLASSIFIER_WEIGHTS).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _locked(command: str) -> Callable:
    """Run the decorated command holding the write lock of its ``run_dir`` (:func:`tspg.workflow.run_lock`)."""
    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kw):  # noqa: ANN002, ANN003, ANN202
            from tspg.workflow import run_lock

            with run_lock(Path(kw["run_dir"]), command):
                return f(*args, **kw)
        return wrapper
    return decorate


@app.command("run", context_settings=CONTEXT)
@_data_options(required=True)
@click.option("--target", "targets", multiple=True, required=True,
              help="Target class to perturb towards (repeat for several; they share the classifier; 'all': "
                   "every class).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output (run) folder.")
@_perturb_options
@_train_options
@_generator_options
@_analysis_options
@_plot_options
@click.option("--no-evaluate", is_flag=True, help="Skip the evaluation against baselines (evaluation.tsv/.md).")
@click.option("--force", is_flag=True, help="Replace a run already in --out.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted run in --out made by the same command: its classifier and every completed "
                   "target are kept, the rest is trained and written (an empty --out starts a new run).")
def run_cmd(**kw) -> None:  # noqa: ANN003
    """Train the classifier and one generator per target, then perturb and write every output.

    Outputs (see README): manifest.json, classifier.safetensors, classifier_metrics.json, and per target
    <target>/generator.safetensors, metrics.json, perturbed.tsv, perturbations.tsv, predictions.tsv,
    history.tsv, mean_shift.tsv.
    """
    _setup_logging(kw["quiet"])
    from tspg._names import MANIFEST
    from tspg.data import resolve_targets
    from tspg.model import TSPG
    from tspg.workflow import (
        check_out_folder,
        check_run_targets,
        classifier_phase,
        clear_run,
        generator_phase,
        perturb_phase,
        read_classifier_metrics,
        read_target_metrics,
    )

    out = Path(kw["out"])
    cc, gc = _configs(kw)
    spec = _data_spec(kw)
    pspec = _perturb_spec(kw)
    if kw["resume"] and kw["force"]:
        from tspg.data import InputError

        raise InputError("--resume keeps the run in --out and --force replaces it; pass one of them.")
    resuming = kw["resume"] and (out / MANIFEST).exists()
    if not resuming:
        check_out_folder(out, kw["force"])
    dataset = spec.load()
    targets = resolve_targets(kw["targets"], dataset.classes)
    check_run_targets(targets, dataset.classes)
    model = TSPG(cc, gc, seed=kw["seed"], test_size=kw["test_size"], val_size=kw["val_size"], impute=spec.impute,
                 transform=kw["transform"], device=kw["device"], progress=not kw["quiet"])
    loaded = None  # --perturb-data, read once: checked before training (a bad file costs no training time)
    if pspec.data is not None:  # and then perturbed for every target
        from tspg.workflow import load_perturb_data

        loaded = load_perturb_data(pspec, spec, dataset.genes, spec.impute, kw["transform"])
    from tspg.data import stratified_split

    # the split the classifier phase will draw (a resumed run keeps its own: its figures check the names)
    split = stratified_split(dataset.labels, test_size=model.test_size, val_size=model.val_size, seed=model.seed)
    _check_analysis_inputs(kw, None if resuming else _to_perturb(pspec, split, loaded), targets,
                           held_out=loaded is None and pspec.which == "test")
    summary: dict = {}

    def body() -> None:
        nonlocal model
        done: set[str] = set()
        if resuming:  # under the lock: the folder is read as its last writer left it
            from tspg.workflow import resume_run

            model, done = resume_run(out, model, dataset, spec, targets, device=kw["device"])
            summary["clf"] = read_classifier_metrics(out)
        else:
            if kw["force"]:
                clear_run(out)
            summary["clf"] = classifier_phase(model, dataset, out)
        if kw["generator_kind"] == "conditional" and any(t not in model.generators for t in targets):
            from tspg.workflow import conditional_phase

            conditional_phase(model, dataset, targets, out)  # one generator for every target: all are new
            done = set()
        for t in targets:
            if t in done:  # perturbed already (metrics.json is written last); its analysis is cheap to redo
                summary[t] = read_target_metrics(out, t)
            else:
                if t not in model.generators:
                    generator_phase(model, dataset, t, out)
                summary[t] = perturb_phase(model, dataset, t, out, pspec, spec, loaded=loaded)
            _analyse(out, t, model.genes, kw)
        if not kw["no_evaluate"]:
            from tspg.workflow import evaluate_phase

            evaluation.update(evaluate_phase(model, dataset, out, targets))
        _figures_and_report(out, model, dataset, targets, kw)

    evaluation: dict = {}
    _new_run(out, kw["force"], body, "tspg run")
    _print_summary(out, summary.pop("clf"), summary, evaluation)


@app.command("train-classifier", context_settings=CONTEXT)
@_data_options(required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output (run) folder.")
@_train_options
@click.option("--force", is_flag=True, help="Replace a run already in --out.")
def train_classifier_cmd(**kw) -> None:  # noqa: ANN003
    """Split the data, fit the scaler and train the classifier f into a new run folder."""
    _setup_logging(kw["quiet"])
    from tspg.model import TSPG
    from tspg.workflow import check_out_folder, classifier_phase, clear_run

    out = Path(kw["out"])
    cc, gc = _configs(kw)
    spec = _data_spec(kw)
    check_out_folder(out, kw["force"])
    dataset = spec.load()
    model = TSPG(cc, gc, seed=kw["seed"], test_size=kw["test_size"], val_size=kw["val_size"], impute=spec.impute,
                 transform=kw["transform"], device=kw["device"], progress=not kw["quiet"])
    summary: dict = {}

    def body() -> None:
        if kw["force"]:
            clear_run(out)
        summary["clf"] = classifier_phase(model, dataset, out)

    _new_run(out, kw["force"], body, "tspg train-classifier")
    _print_summary(out, summary["clf"], {})


def _reload(run_dir: str, kw: dict, retrain: tuple[str, ...] = ()):  # noqa: ANN202
    from tspg.model import TSPG
    from tspg.workflow import reload_dataset

    _check_device(kw.get("device") or "auto")
    model = TSPG.load(run_dir, device=kw.get("device") or "auto", progress=not kw["quiet"], skip_generators=retrain)
    override = _data_spec(kw) if kw.get("data") else None
    if override is not None:
        recorded = model.inputs
        for key in ("labels", "labels_key", "transpose", "layer", "use_raw", "gene_sets", "gene_set_names",
                    "allow_missing_labels", "impute", "gene_id_column"):
            if key in recorded and not kw.get(key):
                setattr(override, key, recorded[key])
    dataset, spec = reload_dataset(model, override)
    return model, dataset, spec


@app.command("train-generator", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True, required=True,
              help="Target class (repeat for several; 'all': every class).")
@_data_options(required=False)
@_generator_options
@_DEVICE
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default=None,
              help="Arithmetic of training: auto, fp32 or bf16 autocast (default: the run's, else auto).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, warnings only.")
@_locked("tspg train-generator")
def train_generator_cmd(run_dir: str, **kw) -> None:  # noqa: ANN003
    """Train generators for TARGETs in an existing run folder (its classifier, split and scaler are reused).

    The data are re-read from the paths in the run's manifest (checked by SHA-256); pass --data/--labels if
    the files have moved.
    """
    _setup_logging(kw["quiet"])
    from tspg.data import resolve_targets
    from tspg.model import read_manifest
    from tspg.workflow import check_run_targets, generator_phase

    targets = resolve_targets(kw["targets"], read_manifest(run_dir)["classes"])
    model, dataset, _ = _reload(run_dir, kw, retrain=tuple(targets))
    check_run_targets(targets, model.classes)
    _, gc = _configs(kw, base=model.generator_config)
    model.generator_config = gc
    if kw["generator_kind"] == "conditional":
        from tspg.workflow import conditional_phase

        conditional_phase(model, dataset, targets, Path(run_dir))
    else:
        for t in targets:
            generator_phase(model, dataset, t, Path(run_dir))
    click.echo(f"trained generator(s) for {', '.join(targets)} in {run_dir}")


@app.command("perturb", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True,
              help="Target class (repeat for several; default or 'all': every trained target).")
@_perturb_options
@_analysis_options
@_plot_options
@_data_options(required=False)
@_DEVICE
@_QUIET
@_locked("tspg perturb")
def perturb_cmd(run_dir: str, **kw) -> None:  # noqa: ANN003
    """Perturb samples with the trained generators of a run folder and write the per-target outputs.

    The top genes (and, with --enrich-gmt, their enrichment) are recomputed from the new perturbations. With
    --perturb-data holding ONE sample (one patient), its own genes, enrichment, probabilities and page go to
    RUN/<target>/patients/<sample>/ and the cohort's files are left as they are.
    """
    _setup_logging(kw["quiet"])
    from tspg.workflow import perturb_phase

    pspec = _perturb_spec(kw)
    model, dataset, spec = _reload(run_dir, kw)
    from tspg.data import resolve_targets

    targets = resolve_targets(kw["targets"], sorted(model.generators)) or sorted(model.generators)
    if not targets:
        from tspg.data import InputError

        raise InputError(f"{run_dir} has no trained generator; run 'tspg train-generator {run_dir} --target CLASS'.")
    from tspg.workflow import load_perturb_data, patient_folder, patient_phase

    # --perturb-data is read once, for the one-patient check and every target
    loaded = (load_perturb_data(pspec, spec, model.genes, model.impute, model.transform)
              if pspec.data is not None else None)
    one_patient = loaded is not None and len(loaded[0]) == 1
    _check_analysis_inputs(kw, None if one_patient else _to_perturb(pspec, model.split, loaded), targets,
                           held_out=loaded is None and pspec.which == "test")
    if one_patient:
        for t in targets:
            s = patient_phase(model, dataset, t, Path(run_dir), pspec, spec, k=kw["top_k"],
                              gmt_paths=list(kw.get("enrich_gmt") or []), figures=not kw.get("no_figures"),
                              loaded=loaded)
            click.echo(f"sample {s['sample']!r} -> {t!r}: f calls it {s['predicted_before']} "
                       f"(p_target {s['prob_target_before']:.3f}), after the perturbation {s['predicted_after']} "
                       f"(p_target {s['prob_target_after']:.3f}); "
                       f"{patient_folder(Path(run_dir), t, s['sample']) / 'patient.html'}")
        return
    results = {}
    for t in targets:
        results[t] = perturb_phase(model, dataset, t, Path(run_dir), pspec, spec, loaded=loaded)
        _analyse(Path(run_dir), t, model.genes, kw)
    _figures_and_report(Path(run_dir), model, dataset, targets, kw)
    _print_summary(Path(run_dir), None, results)


def _run_targets(run_dir: str, targets: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The run's genes and the targets to analyse (default: every target with perturbations)."""
    from tspg.data import InputError
    from tspg.model import read_manifest

    manifest = read_manifest(run_dir)
    known = manifest["targets"]
    chosen = list(dict.fromkeys(targets)) or sorted(known)
    for t in chosen:
        if t not in known:
            raise InputError(f"No target '{t}' in {run_dir}; trained targets: {', '.join(known) or 'none'}.")
    if not chosen:
        raise InputError(f"{run_dir} has no trained target yet.")
    return manifest["genes"], chosen


@app.command("genes", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True, help="Target class (default: every target of the run).")
@_analysis_options
@_QUIET
@_locked("tspg genes")
def genes_cmd(run_dir: str, targets: tuple[str, ...], **kw) -> None:  # noqa: ANN003
    """Write the most perturbed genes of each target of a run.

    Per target: top_genes_per_sample.tsv, top_genes.tsv, top_genes_by_source.tsv, and unique_top_up /
    unique_top_down / consensus_up / consensus_down in metrics.json; with --enrich-gmt also the enrichment tables.
    The target's own samples (by label, else by f's call before) are no transition and are left out.
    """
    _setup_logging(kw["quiet"])
    genes, chosen = _run_targets(run_dir, targets)
    _check_analysis_inputs(kw, None, chosen)
    for t in chosen:
        _analyse(Path(run_dir), t, genes, kw)
    _refresh_report(Path(run_dir))
    click.echo(f"top genes written for {', '.join(chosen)} in {run_dir}")


@app.command("enrich", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--enrich-gmt", multiple=True, required=True, type=click.Path(dir_okay=False, exists=True),
              help="GMT library (repeatable).")
@click.option("--target", "targets", multiple=True, help="Target class (default: every target of the run).")
@_QUIET
@_locked("tspg enrich")
def enrich_cmd(run_dir: str, enrich_gmt: tuple[str, ...], targets: tuple[str, ...], quiet: bool) -> None:
    """Hypergeometric enrichment of each target's consensus top up and down genes (after 'tspg genes').

    The background is the genes the model was trained on; q-values are Benjamini-Hochberg per library.
    Writes <target>/enrichment_up.tsv and enrichment_down.tsv.
    """
    _setup_logging(quiet)
    from tspg.workflow import enrich_phase

    genes, chosen = _run_targets(run_dir, targets)
    for t in chosen:
        tables = enrich_phase(Path(run_dir), t, list(enrich_gmt), genes)
        for direction, table in tables.items():
            top = table.iloc[0] if len(table) else None
            click.echo(f"{t} {direction}: " + (f"top term {top['term']} (q = {top['q']:.2g})" if top is not None
                                                else "no term overlaps the top genes"))
    _refresh_report(Path(run_dir))


def _refresh_report(out: Path) -> None:
    """Rewrite report.html after a command changed what it shows (only where a report exists already)."""
    from tspg.report import REPORT, write_report

    if (out / REPORT).exists():
        write_report(out)


@app.command("plot", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True, help="Target class (default: every target of the run).")
@_plot_options
@_data_options(required=False)
@_DEVICE
@_QUIET
@_locked("tspg plot")
def plot_cmd(run_dir: str, targets: tuple[str, ...], **kw) -> None:  # noqa: ANN003
    """Draw the figures of a run (PNG and SVG) and rewrite its report.html.

    Per target, in <target>/plots: tsne (and its coordinates in <target>/tsne.tsv), heatmap_<sample> (scaled
    units) and heatmap_<sample>_expr (original units), panel, history; and plots/classifier_history.
    """
    _setup_logging(kw["quiet"])
    from tspg.workflow import check_heatmap_samples

    _, chosen = _run_targets(run_dir, targets)
    check_heatmap_samples(Path(run_dir), chosen, _plot_spec(kw))
    model, dataset, _ = _reload(run_dir, kw)
    _figures_and_report(Path(run_dir), model, dataset, chosen, kw)
    click.echo(f"figures written for {', '.join(chosen)} in {run_dir}; report: {Path(run_dir) / 'report.html'}")


@app.command("evaluate", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True, help="Target class (default: every target of the run).")
@_data_options(required=False)
@_DEVICE
@_QUIET
@_locked("tspg evaluate")
def evaluate_cmd(run_dir: str, targets: tuple[str, ...], **kw) -> None:  # noqa: ANN003
    """Compare each target's perturbations with baselines on the held-out samples.

    Methods: tspg, identity, mean_shift, optimal_transport, nearest_target; metrics: success under f and under
    independent classifiers (beside each one's recall of the real held-out target samples), centroid accuracy,
    energy distance and MMD to real target samples (with the floor of real vs real), R^2 of means, Pearson-delta,
    agreement with DE genes, size of P. Writes <target>/evaluation.tsv and evaluation.md, and refreshes
    report.html.
    """
    _setup_logging(kw["quiet"])
    from tspg.workflow import evaluate_phase, headline_text

    _, chosen = _run_targets(run_dir, targets)
    model, dataset, _ = _reload(run_dir, kw)
    heads = evaluate_phase(model, dataset, Path(run_dir), chosen)
    _refresh_report(Path(run_dir))
    for t, h in heads.items():
        click.echo(f"{t}: {headline_text(h)}")
    click.echo(f"evaluation: {Path(run_dir) / 'evaluation.md'}")


@app.command("report", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@_QUIET
@_locked("tspg report")
def report_cmd(run_dir: str, quiet: bool) -> None:
    """Write RUN_DIR/report.html: one self-contained page (figures embedded) with every result of the run."""
    _setup_logging(quiet)
    from tspg.report import write_report

    _run_targets(run_dir, ())
    click.echo(f"report: {write_report(Path(run_dir))}")


@app.command("export", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--target", "targets", multiple=True, help="Target class (default: every target of the run).")
@click.option("--h5ad", "h5ad", type=click.Path(dir_okay=False),
              help="Output file (one target only; default: <target>/perturbed.h5ad in the run folder).")
@click.option("--tsne-mode", type=click.Choice(list(TSNE_MODES)), default="project", show_default=True,
              help="How perturbed samples are placed in the t-SNE map stored in obsm.")
@_data_options(required=False)
@_DEVICE
@_QUIET
def export_cmd(run_dir: str, targets: tuple[str, ...], h5ad: str | None, **kw) -> None:  # noqa: ANN003
    """Write each target's perturbations as AnnData (.h5ad) for scanpy.

    X: the samples before the perturbation; layers['tspg_perturbed'], layers['tspg_perturbation']; obs: label,
    part, predictions; obsm['X_tspg_tsne'] (and X_tspg_tsne_before): every perturbed sample in a t-SNE map of
    the original samples; uns['tspg']: target, metrics and run facts.
    """
    _setup_logging(kw["quiet"])
    from tspg.data import InputError
    from tspg.workflow import PlotSpec, export_phase

    _, chosen = _run_targets(run_dir, targets)
    if h5ad and len(chosen) > 1:
        raise InputError(f"--h5ad names one file but the run has {len(chosen)} targets; add --target.")
    if h5ad and Path(h5ad).suffix != ".h5ad":
        raise InputError(f"--h5ad {h5ad}: the file name must end in .h5ad.")
    model, dataset, _ = _reload(run_dir, kw)
    for t in chosen:
        path = export_phase(model, dataset, Path(run_dir), t, Path(h5ad) if h5ad else None,
                            PlotSpec(tsne_mode=kw["tsne_mode"]))
        click.echo(f"{t}: {path}")


#: ``tspg sweep`` options that are the sweep's own (the rest are passed to every gene set's ``tspg run``).
_SWEEP_OWN = ("gene_set_names", "all_gene_sets", "gene_sets", "targets", "out", "jobs", "threads", "engine",
              "profile", "force", "quiet")


def _run_args(ctx: click.Context) -> list[str]:
    """The options given on the command line that ``tspg run`` takes, as its arguments (paths made absolute)."""
    args: list[str] = []
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or p.name in _SWEEP_OWN:
            continue
        if ctx.get_parameter_source(p.name) in (None, click.core.ParameterSource.DEFAULT):
            continue
        value = ctx.params[p.name]
        values = list(value) if p.multiple else [value]
        for v in values:
            if p.is_flag:
                if v:
                    args.append(p.opts[0])
                continue
            if isinstance(p.type, click.Path) and v is not None:
                v = str(Path(v).resolve())
            args += [p.opts[0], str(v)]
    return args


@app.command("sweep", context_settings=CONTEXT)
@_data_options(required=True, sweep=True)
@click.option("--all-gene-sets", is_flag=True, help="Sweep every gene set of --gene-sets.")
@click.option("--target", "targets", multiple=True, required=True,
              help="Target class of every gene set's run (repeat for several; 'all': every class).")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Sweep folder: one run folder per gene set, summary.tsv and sweep.html.")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Gene sets run at once; each gets cores / N threads (and, with CUDA, the GPUs in turn).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Threads per job (default: this machine's cores / --jobs; with a cluster --profile, the cores "
                   "each job asks for).")
@click.option("--engine", type=click.Choice(["local", "snakemake"]), default="local", show_default=True,
              help="local: a pool of processes here; snakemake: the package's Snakemake workflow (for clusters, "
                   "with --profile).")
@click.option("--profile", type=click.Path(file_okay=False, exists=True),
              help="With --engine snakemake: a Snakemake profile folder (executor, jobs, resources; e.g. SLURM).")
@_perturb_options
@_train_options
@_generator_options
@_analysis_options
@_plot_options
@click.option("--no-evaluate", is_flag=True, help="Skip the evaluation against baselines in every run.")
@click.option("--force", is_flag=True, help="Replace a sweep already in --out.")
def sweep_cmd(**kw) -> None:  # noqa: ANN003
    """Run the same TSPG run on each of several gene sets, then tabulate them (summary.tsv, sweep.html).

    \b
    Each gene set gets a run folder OUT/<gene set>/ (as 'tspg run' writes it). Running the same command again
    skips the finished gene sets and finishes the rest (a killed gene set is resumed). Every other option is
    passed to each gene set's 'tspg run'. Example:
      tspg sweep --data gem.tsv --labels labels.tsv --gene-sets h.all.gmt --all-gene-sets --target all \\
        --out sweeps/hallmark --jobs 2 --enrich-gmt h.all.gmt
    """
    _setup_logging(kw["quiet"])
    from tspg.data import InputError
    from tspg.workflow import run_lock
    from tspg.workflow._sweep import plan_sweep, run_local, run_snakemake, write_summary

    ctx = click.get_current_context()
    if not kw["gene_sets"]:
        raise InputError("A sweep runs over gene sets: pass --gene-sets GMT with --gene-set NAME ... or "
                         "--all-gene-sets.")
    if kw["profile"] and kw["engine"] != "snakemake":
        raise InputError("--profile is a Snakemake profile; pass it with --engine snakemake.")
    for key in ("data", "labels", "gene_sets"):
        if kw.get(key) and not Path(kw[key]).exists():
            raise InputError(f"--{key.replace('_', '-')} {kw[key]}: no such file.")
    _configs(kw)  # a bad generator or classifier option stops here, not in every job
    _check_sweep_data(kw)
    out = Path(kw["out"])
    gpus = 1 if str(kw.get("device") or "").startswith("cuda") else 0
    plan = plan_sweep(out, kw["gene_sets"], list(kw["gene_set_names"]), kw["all_gene_sets"], list(kw["targets"]),
                      _run_args(ctx), jobs=kw["jobs"], gpus=gpus, force=kw["force"], threads=kw["threads"])
    with run_lock(out, "tspg sweep"):
        if kw["engine"] == "snakemake":
            rc = run_snakemake(out, plan, jobs=kw["jobs"], profile=kw["profile"], progress=not kw["quiet"])
            failed = {} if rc == 0 else {"snakemake": rc}
        else:
            failed = run_local(out, plan, jobs=kw["jobs"], progress=not kw["quiet"])
        summary, page, missing = write_summary(out)
    done = len(plan.gene_sets) - len(missing)
    click.echo(f"sweep: {done} of {len(plan.gene_sets)} gene set(s) finished; {summary}, {page}")
    if missing:
        from tspg.workflow._sweep import LOGS

        click.echo(f"not finished: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} (logs in "
                   f"{out / LOGS}; run the same command again to retry)", err=True)
        sys.exit(1)
    if failed:
        sys.exit(1)


def _check_sweep_data(kw: dict) -> None:
    """Read the data, labels (a .cls file needs the GEM's samples) and targets once, as a gene set's job reads them.

    A problem with them is then one line and exit code 2 before any job, not a failure of every job. A problem of
    one gene set (none of its genes in the data, a missing value in one of them) stays that set's job's failure:
    the sets are tried in order until one loads, and only an error that two sets share, or that every set
    meets, stops the sweep. Where the choice of sets is itself wrong, the plan says so instead.
    """
    from tspg.data import InputError, check_targets, read_gmt

    sets, names = read_gmt(kw["gene_sets"]), list(kw["gene_set_names"])
    if bool(names) == bool(kw["all_gene_sets"]) or any(n not in sets for n in names):
        return
    own = logging.getLogger("tspg")
    level = own.level
    own.setLevel(logging.ERROR)  # what it read is each job's to say, in its log
    try:
        first: InputError | None = None
        previous = None
        for name in dict.fromkeys(names or list(sets)):
            try:
                dataset = _data_spec({**kw, "gene_set_names": [name]}).load()
                break
            except InputError as exc:
                if str(exc) == previous:  # not the set's own problem
                    raise
                first, previous = first or exc, str(exc)
        else:
            raise first  # every set meets it: every job would
    finally:
        own.setLevel(level)
    if "all" not in kw["targets"]:
        check_targets(list(kw["targets"]), dataset.classes)


@app.command("sweep-job", context_settings=CONTEXT, hidden=True)
@click.argument("sweep_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--dir", "directory", help="Run folder (gene set) of the sweep to run.")
@click.option("--summary", is_flag=True, help="Write summary.tsv and sweep.html from the finished gene sets.")
def sweep_job_cmd(sweep_dir: str, directory: str | None, summary: bool) -> None:
    """One unit of a sweep, as both engines run it: one gene set's run, or the summary (see docs/sweeps.md)."""
    _setup_logging(False)
    from tspg.data import InputError
    from tspg.workflow._sweep import end_with_parent, run_gene_set, write_summary

    end_with_parent()
    if bool(directory) == summary:
        raise InputError("Pass either --dir GENE_SET_FOLDER or --summary.")
    if summary:
        write_summary(sweep_dir)
    else:
        run_gene_set(sweep_dir, directory)


@app.command("demo", context_settings=CONTEXT)
@click.option("--out", type=click.Path(file_okay=False), default="tspg-demo", show_default=True,
              help="Output folder: the synthetic input files go to OUT/input, the run to OUT/run.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Seed of the data and of the run.")
@click.option("--quick", is_flag=True, help="A smaller atlas (3 tissues x 60 samples x 200 genes) and a few epochs: "
              "a smoke test in seconds, not a meaningful result.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, warnings only.")
@click.option("--force", is_flag=True, help="Replace a demo already in --out.")
def demo_cmd(out: str, seed: int, quick: bool, quiet: bool, force: bool) -> None:
    """Build a synthetic tissue atlas with planted marker genes and run TSPG on it (no input files needed).

    The atlas has 6 tissues x 150 samples x 500 genes, 12 co-expressed gene programs and 20 up and 20 down
    marker genes per tissue; OUT/input/gene_sets.gmt lists the programs and the planted marker sets.
    """
    _setup_logging(quiet)
    from tspg._names import MANIFEST
    from tspg.data import make_atlas

    root = Path(out)
    if (root / "run" / MANIFEST).exists() and not force:
        from tspg.data import InputError

        raise InputError(f"{root} already holds a demo; pass --force to replace it or choose another --out.")
    atlas = make_atlas(n_classes=3, n_genes=200, samples_per_class=60, seed=seed) if quick else make_atlas(seed=seed)
    paths = atlas.write(root / "input")
    log.info("demo data: %s (%d samples x %d genes, %d classes)", root / "input", *atlas.gem.shape,
             atlas.labels.nunique())
    targets = ["Liver"] if quick else ["Liver", "Heart - Left Ventricle"]
    args = ["--data", str(paths["data"]), "--labels", str(paths["labels"]), "--out", str(root / "run"), "--seed",
            str(seed), "--force"]
    args += [a for t in targets for a in ("--target", t)]
    args += ["--enrich-gmt", str(paths["gene_sets"])]
    if quick:
        args += ["--classifier-epochs", "10", "--epochs", "5"]
    if quiet:
        args.append("--quiet")
    run_cmd.main(args=args, prog_name="tspg demo", standalone_mode=False)


def main() -> None:
    """Entry point of the ``tspg`` console script.

    It alone sets process-wide state, before torch or matplotlib load: the thread environment of
    :data:`tspg._settings.THREAD_ENVIRONMENT`, matplotlib's file-only ``Agg`` backend and glibc's heap thresholds
    (:meth:`tspg._settings.Settings.apply_heap_settings`), each only where the user has not set it. Importing tspg
    sets nothing.
    """
    import os

    from tspg import settings

    settings.apply_thread_environment()
    settings.apply_heap_settings()
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are files; never open a window
    app.main(prog_name="tspg")


if __name__ == "__main__":
    main()
