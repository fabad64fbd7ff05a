"""tspg: the Transcriptome State Perturbation Generator (TSPG) as a toolkit.

Train a classifier on labelled expression profiles, then a generator per target class that perturbs any
sample until the classifier calls it the target while it stays realistic; the per-gene perturbations say
which genes a transition needs.
"""

import os as _os

# Same seed, same data, same machine: same results. MKL and OpenMP may otherwise lower their thread count when
# the machine is busy, which changes the order of floating-point sums from run to run. (Only effective when tspg
# is imported before torch; the ``tspg`` command always is.)
for _var in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    _os.environ.setdefault(_var, "FALSE")
# Idle OpenMP threads sleep instead of spinning. With a fixed thread count, spinning threads on a machine shared
# with other work wait for each other at every parallel region: with one busy process beside it, a W2 generator
# step took 420-556 ms spinning against 222-250 ms passive (2 cores; idle: 124-155 against 141-150 ms, no cost;
# classifier steps of 32 samples: 32-37 against 76-79 ms loaded, about 10% slower idle). See docs/method.md.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["TSPG", "Perturbation", "__version__"]


def __getattr__(name: str):  # noqa: ANN202
    """Import the model lazily so that ``import tspg`` (and ``tspg --help``) stay fast."""
    if name in ("TSPG", "Perturbation"):
        from tspg import model

        return getattr(model, name)
    raise AttributeError(f"module 'tspg' has no attribute {name!r}")
