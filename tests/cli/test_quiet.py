"""The command's terminal shows tspg's own lines only: a library's Python warning goes to the DEBUG log."""

import logging
import warnings
from pathlib import Path

import tspg
from tspg.cli import _setup_logging, _show_warning


def test_a_library_warning_is_a_debug_record_and_tspg_s_own_a_warning_line(caplog):
    library_file = "/venv/lib/python3.11/site-packages/sklearn/preprocessing/_data.py"
    own_file = str(Path(tspg.__file__).parent / "_settings.py")
    # another test's command may have left tspg.library at WARNING: set both loggers for this test
    with caplog.at_level(logging.DEBUG, logger="tspg"), caplog.at_level(logging.DEBUG, logger="tspg.library"):
        _show_warning(UserWarning("Numerical issues were encountered\nsecond line"), UserWarning, library_file, 299)
        _show_warning(UserWarning("torch is imported already"), UserWarning, own_file, 91)
    lib, own = caplog.records[-2:]
    assert (lib.name, lib.levelno) == ("tspg.library", logging.DEBUG)
    assert lib.getMessage() == "Numerical issues were encountered (UserWarning, _data.py:299)"
    assert (own.name, own.levelno) == ("tspg", logging.WARNING)


def test_after_the_command_s_setup_a_library_warning_does_not_reach_stderr(capfd):
    before, root = warnings.showwarning, logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        _setup_logging(quiet=False)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning  # catch_warnings restores the hook it found; set it inside
            warnings.warn_explicit("a library's note", FutureWarning, "/x/site-packages/anndata/_io/h5ad.py", 267)
        err = capfd.readouterr().err
        assert "library's note" not in err and "FutureWarning" not in err
    finally:
        warnings.showwarning = before
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in ("tspg", "tspg.library", "openTSNE"):
            logging.getLogger(name).setLevel(logging.NOTSET)
