"""The same seed gives the same draws in a fresh process, cold or warm compile cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("fit_fingerprint.py")


def _fingerprint(env: dict[str, str]) -> tuple[str, int, int]:
    """The draws' fingerprint, how many C callbacks were loaded from numba's cache and how
    many rewritten graphs from vekst's."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = {}
    for line in done.stdout.splitlines():
        for label in ("FINGERPRINT", "CALLBACKS_FROM_CACHE", "GRAPHS_FROM_CACHE"):
            if line.startswith(label + " "):
                found[label] = line.split()[1]
    assert len(found) == 3, done.stdout[-2000:]
    return (
        found["FINGERPRINT"],
        int(found["CALLBACKS_FROM_CACHE"]),
        int(found["GRAPHS_FROM_CACHE"]),
    )


def _cold_compiledir(target: Path) -> Path:
    """A PyTensor base compiledir without numba's cache (the part that changed the draws)
    and without vekst's rewritten graphs, but with the C helper modules copied, so the test
    does not rebuild those."""
    import pytensor

    source = Path(pytensor.config.base_compiledir)
    target.mkdir()
    for child in source.glob("compiledir_*"):
        shutil.copytree(
            child, target / child.name, ignore=shutil.ignore_patterns("tmp*", "vekst_graphs")
        )
    return target


# In the default run (about 3 minutes on 2 cores): reproducibility is a promise of every
# install, and it broke once without any statistical test noticing.
def test_same_seed_same_draws_across_processes_and_caches(tmp_path):
    base = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    base["PYTHONPATH"] = src + os.pathsep + base.get("PYTHONPATH", "")
    cold_dir = _cold_compiledir(tmp_path / "pytensor")
    assert not (cold_dir / "numba").exists()
    cold = {**base, "PYTENSOR_FLAGS": f"base_compiledir={cold_dir}", "PYTHONHASHSEED": "1"}
    first, loaded_cold, graphs_cold = _fingerprint(cold)  # compiles from scratch
    assert any((cold_dir / "numba").iterdir()), "the first run should fill the numba cache"
    assert loaded_cold == 0 and graphs_cold == 0
    warm = {**cold, "PYTHONHASHSEED": "2"}
    second, loaded_warm, graphs_warm = _fingerprint(warm)  # loads the compiled code
    assert first == second
    # The rewritten graphs come from the cache as well (~10 s for the national model).
    assert graphs_warm == 1
    # nutpie's two callbacks (log density, expansion) come from the cache too: a second
    # process does not compile them again (~30 s of ~40 s for the national model).
    assert loaded_warm == 2
