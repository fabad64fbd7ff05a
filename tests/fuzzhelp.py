"""Shared by the fuzz tests and conftest: the count of examples tried, reported at the end of the run."""

#: Examples tried per fuzz test (test name -> count), filled by :func:`tried`.
TRIED: dict[str, int] = {}


def tried(name: str) -> None:
    """Count one example of the fuzz test ``name``."""
    TRIED[name] = TRIED.get(name, 0) + 1
