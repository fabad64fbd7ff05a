"""A fork server for the tests' ``tspg`` commands: the imports are paid once, each command is its own process.

``tests/clihelp.py`` starts this script once per test session. It does what ``tspg.cli.main`` does before torch
loads (the thread environment, the heap settings, the ``Agg`` backend), imports what a command imports, then reads
one JSON request per line from stdin: ``{"args": [...], "cwd": DIR, "env": {...}, "out": FILE, "err": FILE}``.
For each it forks a child that runs the command as ``python -m tspg.cli ARGS`` would (same arguments, directory and
environment; its stdout and stderr go to the two files) and answers ``{"rc": EXIT_CODE}``. Nothing here runs a
torch operation before forking, so no OpenMP thread pool exists to be lost in the child.

Anything the imports print makes the server stop at once: a warning printed at import time would reach the
terminal of a real command, and a test must see it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _prepare() -> None:
    from tspg import settings

    settings.apply_thread_environment()
    settings.apply_heap_settings()
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import ot  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import scipy.stats  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401  (torch.optim imports it on the first optimiser)

    import tspg.cli  # noqa: F401
    import tspg.model  # noqa: F401
    import tspg.pl  # noqa: F401
    import tspg.tl  # noqa: F401
    import tspg.workflow  # noqa: F401

    del torch  # imported only: no torch operation has run, so no thread pool exists


def _child(req: dict) -> int:
    from tspg._settings import THREAD_ENVIRONMENT

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for fd, name in ((1, "out"), (2, "err")):
        target = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for name, value in THREAD_ENVIRONMENT.items():  # what tspg.cli.main sets in a fresh process
        os.environ.setdefault(name, value)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.argv = ["tspg", *req["args"]]
    from tspg.cli import app

    try:
        app.main(args=req["args"], prog_name="tspg")
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # as Python does with sys.exit("message")
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001  (as Python does with an uncaught exception)
        traceback.print_exc()
        code = 1
    return code


def serve() -> None:
    """Answer requests until stdin closes."""
    requests, answers = sys.stdin, sys.stdout
    for line in requests:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(req)
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    _prepare()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    serve()
