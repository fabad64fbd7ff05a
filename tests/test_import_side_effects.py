"""Importing tspg changes nothing in the process; the ``tspg`` command sets its own environment."""

import json
import os
import subprocess
import sys

import pytest

THREAD_VARS = ("MKL_DYNAMIC", "OMP_DYNAMIC", "OMP_WAIT_POLICY")

PROBE = """
import json, os, sys
import matplotlib
def state():
    mask = os.umask(0o022); os.umask(mask)
    return {"env": dict(sorted(os.environ.items())),
            "umask": mask, "backend": matplotlib.rcParams._get_backend_or_none()}
before = state()
import tspg, tspg.data, tspg.nn, tspg.train, tspg.model, tspg.tl, tspg.pl, tspg.report, tspg.cli  # noqa
import tspg.workflow._run, tspg.workflow._figures, tspg.workflow._evaluation
print(json.dumps([before, state()]))
"""


def _child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP", "MKL", "MPL"))}
    return {**env, **extra}


@pytest.mark.parametrize("extra", [{}, {"MPLBACKEND": "svg", "OMP_WAIT_POLICY": "ACTIVE"}])
def test_import_changes_no_environment_umask_or_backend(extra):
    out = subprocess.run([sys.executable, "-c", "import os; os.umask(0o027)\n" + PROBE], env=_child_env(**extra),
                         capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    assert before == after
    assert after["umask"] == 0o027


def test_command_sets_the_thread_environment_and_keeps_users_values():
    code = ("import json, os, sys; from tspg import cli; sys.argv = ['tspg', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(json.dumps({k: os.environ.get(k) for k in ('MKL_DYNAMIC', 'OMP_DYNAMIC', 'OMP_WAIT_POLICY', "
            "'MPLBACKEND')}))")
    run = subprocess.run([sys.executable, "-c", code], env=_child_env(OMP_WAIT_POLICY="ACTIVE"), capture_output=True,
                         text=True, check=True)
    got = json.loads(run.stdout.splitlines()[-1])
    assert got == {"MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE", "OMP_WAIT_POLICY": "ACTIVE", "MPLBACKEND": "Agg"}


def test_apply_thread_environment_warns_once_torch_is_loaded():
    code = ("import warnings, torch, tspg\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    env = tspg.settings.apply_thread_environment()\n"
            "print(len(w), env['OMP_DYNAMIC'])")
    run = subprocess.run([sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["1", "FALSE"]


def test_settings_validate_and_set_threads():
    import torch

    import tspg

    with pytest.raises(ValueError, match="seed"):
        tspg.settings.seed = -1
    with pytest.raises(ValueError, match="num_threads"):
        tspg.settings.num_threads = 0
    old = torch.get_num_threads()
    try:
        tspg.settings.num_threads = 1
        assert torch.get_num_threads() == 1 == tspg.settings.num_threads
    finally:
        torch.set_num_threads(old)


def test_onednn_setting_validates_and_reads_only_its_variable(monkeypatch):
    import tspg
    from tspg._settings import ONEDNN_FP32_ENVIRONMENT

    assert tspg.settings.onednn_fp32 is True  # the default
    with pytest.raises(ValueError, match="onednn_fp32 must be True or False"):
        tspg.settings.onednn_fp32 = 1
    try:
        monkeypatch.delenv(ONEDNN_FP32_ENVIRONMENT, raising=False)
        assert tspg.settings.apply_onednn_environment() is True  # unset: unchanged
        monkeypatch.setenv(ONEDNN_FP32_ENVIRONMENT, "0")
        assert tspg.settings.apply_onednn_environment() is False
        assert "onednn_fp32=False" in repr(tspg.settings)
        monkeypatch.setenv(ONEDNN_FP32_ENVIRONMENT, " 1 ")
        assert tspg.settings.apply_onednn_environment() is True
        monkeypatch.setenv(ONEDNN_FP32_ENVIRONMENT, "off")
        with pytest.raises(ValueError, match="TSPG_ONEDNN_FP32 must be 1 or 0, not 'off'"):
            tspg.settings.apply_onednn_environment()
        assert tspg.settings.onednn_fp32 is True  # a refused value changes nothing
    finally:
        tspg.settings.onednn_fp32 = True


@pytest.mark.parametrize("value", ["0", "yes"])
def test_command_reads_the_onednn_variable(value, tmp_path):
    # the real command: a bad value is one line and exit code 2 before anything runs; 0 turns the routing off
    code = ("import sys; from tspg import cli, settings; sys.argv = ['tspg', 'genes', sys.argv[1]]\n"
            "try:\n    cli.main()\nexcept SystemExit as e:\n    print('rc', e.code, settings.onednn_fp32)")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "no-run")],
                         env=_child_env(TSPG_ONEDNN_FP32=value), capture_output=True, text=True)
    if value == "yes":
        assert run.stdout.split() == ["rc", "2", "True"]
        assert run.stderr == ("tspg: error: TSPG_ONEDNN_FP32 must be 1 or 0, not 'yes': set it to 0 to keep fp32 "
                              "matrix products in torch's default backend, or unset it\n")
    else:  # the command went on (and refused the missing run folder), with the setting off
        assert run.stdout.split() == ["rc", "2", "False"]
        assert "no-run" in run.stderr and "TSPG_ONEDNN_FP32" not in run.stderr


def test_atomic_write_gives_umask_permissions_without_touching_the_umask(tmp_path):
    code = ("import os, sys; os.umask(0o027)\nfrom tspg._io import atomic_write_text\n"
            "atomic_write_text(sys.argv[1], 'x')\nm = os.umask(0); print(oct(os.stat(sys.argv[1]).st_mode & 0o777), "
            "oct(m))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.txt")], capture_output=True, text=True,
                         check=True)
    assert run.stdout.split() == ["0o640", "0o27"]
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left behind


HEAP_PROBE = """
import json, resource, sys
import numpy as np
import tspg
applied = tspg.settings.apply_heap_settings() if sys.argv[1] == "tuned" else {}
if sys.argv[1] == "cli":  # the tspg command applies them itself
    from tspg import cli
    sys.argv = ["tspg", "--version"]
    try:
        cli.main()
    except SystemExit:
        pass
def cycle():  # two 20 MB blocks, both freed: 40 MB free at the heap's top
    a = np.ones(5 << 20, dtype=np.float32); b = np.ones(5 << 20, dtype=np.float32)
    del a, b
cycle(); cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(json.dumps([applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10]))
"""


def _heap_probe(mode: str, **extra: str) -> tuple[dict, float]:
    env = {k: v for k, v in _child_env(**extra).items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], env=env, capture_output=True, text=True,
                         check=True).stdout
    applied, faults = json.loads(out.strip().splitlines()[-1])
    return applied, faults


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's heap only")
def test_heap_settings_keep_freed_blocks_for_reuse():
    from tspg._memory import HEAP_SETTINGS

    applied, tuned = _heap_probe("tuned")
    assert applied == HEAP_SETTINGS
    _, default = _heap_probe("default")
    # glibc's default rules hand the 40 MB back and fault them in again at every cycle (about 1,000 faults here)
    assert default >= 100
    assert tuned <= 10
    assert _heap_probe("cli")[1] <= 10
    # the user's own settings win: nothing is applied
    applied, _ = _heap_probe("tuned", MALLOC_TRIM_THRESHOLD_="1000000")
    assert applied == {}
