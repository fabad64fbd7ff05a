"""Running the ``tspg`` command as its own process in tests.

Each command is a process of its own, as ``python -m tspg.cli ARGS`` (same arguments, directory and environment;
exit code, stdout and stderr as a subprocess gives them), forked from one server (``_cli_server.py``) that has done
the imports once: they take about 9 s of each fresh process on the 2-core CI machine, more than most commands.
``TSPG_TEST_SUBPROCESS=1`` runs every command as a fresh ``python -m tspg.cli`` instead; ``tests/cli/test_errors.py``
always checks the real command end to end that way.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_SERVER = Path(__file__).with_name("_cli_server.py")
_server: subprocess.Popen | None = None
_scratch: Path | None = None


def _start_server() -> subprocess.Popen:
    global _server, _scratch
    _scratch = Path(tempfile.mkdtemp(prefix="tspg-cli-"))
    log = _scratch / "server.err"
    with open(log, "wb") as err:
        _server = subprocess.Popen([sys.executable, str(_SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=err, text=True, bufsize=1)
    ready = _server.stdout.readline().strip()
    said = log.read_text(errors="replace")
    if ready != "ready" or said:
        _server.kill()
        _server = None
        raise AssertionError(f"the test command server did not start cleanly (its imports said):\n{said}")
    atexit.register(_stop_server)
    return _server


def _stop_server() -> None:
    if _server is not None and _server.poll() is None:
        _server.stdin.close()
        _server.wait(timeout=30)


def _forked(args: list[str]) -> subprocess.CompletedProcess:
    server = _server if _server is not None and _server.poll() is None else _start_server()
    fd, out = tempfile.mkstemp(dir=_scratch, suffix=".out")
    os.close(fd)
    err = out[:-4] + ".err"
    req = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ), "out": out, "err": err}
    server.stdin.write(json.dumps(req) + "\n")
    server.stdin.flush()
    answer = server.stdout.readline()
    if not answer:
        raise AssertionError("the test command server stopped")
    encoding = locale.getpreferredencoding(False)
    stdout, stderr = Path(out).read_text(encoding), Path(err).read_text(encoding)
    os.unlink(out)
    os.unlink(err)
    return subprocess.CompletedProcess([sys.executable, "-m", "tspg.cli", *args], json.loads(answer)["rc"],
                                       stdout, stderr)


def tspg(*args, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``tspg ARGS`` as its own process; with ``check``, a non-zero exit fails the test with its stderr."""
    args = [str(a) for a in args]
    if os.environ.get("TSPG_TEST_SUBPROCESS") == "1" or not hasattr(os, "fork"):
        proc = subprocess.run([sys.executable, "-m", "tspg.cli", *args], capture_output=True, text=True)
    else:
        proc = _forked(args)
    if check and proc.returncode != 0:
        raise AssertionError(f"tspg {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
