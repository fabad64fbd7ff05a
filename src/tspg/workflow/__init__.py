"""Run folders and their phases (train, perturb, analyse, plot, evaluate, write), behind the ``tspg`` command.

The phases read and write the run-folder contract of the README ("Output folder"); the file names are in
:mod:`tspg._names`. The Python API (:class:`tspg.TSPG`, :mod:`tspg.tl`, :mod:`tspg.pl`) needs none of this.
"""

from tspg.workflow._evaluation import evaluate_phase, headline, headline_text
from tspg.workflow._figures import (
    PlotSpec,
    TargetResults,
    check_heatmap_names,
    check_heatmap_samples,
    classifier_plot,
    export_phase,
    plot_phase,
    read_target,
)
from tspg.workflow._lock import RunLockedError, run_lock
from tspg.workflow._memory import release_memory
from tspg.workflow._patient import patient_folder, patient_phase, single_sample
from tspg.workflow._run import (
    DataSpec,
    PerturbSpec,
    check_out_folder,
    check_run_targets,
    classifier_phase,
    clear_run,
    clear_target_outputs,
    conditional_phase,
    enrich_phase,
    generator_phase,
    genes_phase,
    load_perturb_data,
    mean_shift_tables,
    perturb_phase,
    read_classifier_metrics,
    read_predictions,
    read_target_metrics,
    reload_dataset,
    resume_run,
    source_classes,
)

__all__ = [
    "DataSpec",
    "PerturbSpec",
    "PlotSpec",
    "RunLockedError",
    "TargetResults",
    "check_heatmap_names",
    "check_heatmap_samples",
    "check_out_folder",
    "check_run_targets",
    "classifier_phase",
    "classifier_plot",
    "clear_run",
    "clear_target_outputs",
    "conditional_phase",
    "enrich_phase",
    "evaluate_phase",
    "export_phase",
    "generator_phase",
    "genes_phase",
    "headline",
    "headline_text",
    "patient_folder",
    "patient_phase",
    "load_perturb_data",
    "mean_shift_tables",
    "perturb_phase",
    "plot_phase",
    "read_classifier_metrics",
    "read_predictions",
    "read_target_metrics",
    "read_target",
    "release_memory",
    "reload_dataset",
    "resume_run",
    "run_lock",
    "single_sample",
    "source_classes",
]
