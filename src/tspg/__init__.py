"""tspg: the Transcriptome State Perturbation Generator (TSPG) as a toolkit.

Train a classifier on labelled expression profiles, then a generator per target class that perturbs any
sample until the classifier calls it the target while it stays realistic; the per-gene perturbations say
which genes a transition needs.
"""

__version__ = "0.1.0"
