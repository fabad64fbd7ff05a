"""``import tspg`` sets the OpenMP/MKL environment for repeatable, load-robust runs, unless the user set it."""

import json
import os
import subprocess
import sys

CODE = "import json, os, tspg; print(json.dumps({k: os.environ.get(k) for k in ('MKL_DYNAMIC', 'OMP_DYNAMIC', " \
       "'OMP_WAIT_POLICY')}))"


def _env_after_import(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DYNAMIC", "OMP_DYNAMIC", "OMP_WAIT_POLICY")}
    env.update(overrides)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_defaults_are_set():
    assert _env_after_import() == {"MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE", "OMP_WAIT_POLICY": "PASSIVE"}


def test_user_values_are_kept():
    got = _env_after_import(OMP_WAIT_POLICY="ACTIVE", MKL_DYNAMIC="TRUE")
    assert got == {"MKL_DYNAMIC": "TRUE", "OMP_DYNAMIC": "FALSE", "OMP_WAIT_POLICY": "ACTIVE"}
