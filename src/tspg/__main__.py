"""``python -m tspg``: the ``tspg`` command (used by sweeps to start their jobs with the same interpreter)."""

from tspg.cli import main

if __name__ == "__main__":
    main()
