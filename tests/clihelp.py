"""Running the ``tspg`` command as a subprocess in tests."""

import subprocess
import sys


def tspg(*args, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m tspg.cli ARGS``; with ``check``, a non-zero exit fails the test with the command's stderr."""
    proc = subprocess.run([sys.executable, "-m", "tspg.cli", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"tspg {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
