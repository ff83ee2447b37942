"""The model's rewritten PyTensor graphs, kept on disk between processes.

With the C callbacks and PyTensor's numba functions loaded from their disk caches
(:mod:`vekst.nutpie_callbacks`), a second process still spent ~10 s of its compile on
PyTensor's graph rewrites of the log density, its gradient and the expansion of a draw:
PyTensor caches compiled code, not rewritten graphs. A compiled PyTensor function pickles
with its rewritten graph, and unpickling links it again without rewriting, so the graphs
are stored here after the first compile and loaded by later processes.

A stored graph is used only under the same key: the model's compile key (spec, data
shapes, the structure compiled in as constants; :func:`vekst.compile_cache.compile_key`),
a digest of vekst's source code and the versions of the libraries that build or run the
graph. The files live in PyTensor's compile directory (``pytensor.config.compiledir``),
so clearing PyTensor's cache clears them too. A file that cannot be read is ignored and
written again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from importlib.metadata import version
from pathlib import Path

__all__ = ["code_digest", "graph_cache_path", "load_graphs", "store_graphs"]

#: Bump when what is stored changes.
_FORMAT = "1"
#: Graphs this process loaded from the cache (for the reproducibility test).
loaded = 0
_LIBRARIES = ("pymc", "pytensor", "nutpie", "numba", "numpy")


def code_digest() -> str:
    """Digest of vekst's source files: any change to the code changes it."""
    import vekst

    root = Path(vekst.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def graph_cache_path(compile_key: tuple) -> Path:
    """Where the graphs of a model with this compile key are kept.

    Parameters
    ----------
    compile_key
        :func:`vekst.compile_cache.compile_key` of the model.
    """
    import pytensor

    digest = hashlib.sha256()
    parts = [
        _FORMAT,
        repr(compile_key),
        code_digest(),
        *(f"{name}={version(name)}" for name in _LIBRARIES),
        f"fastmath={pytensor.config.numba__fastmath}",
        f"floatX={pytensor.config.floatX}",
    ]
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return Path(pytensor.config.compiledir) / "vekst_graphs" / f"{digest.hexdigest()[:32]}.pkl"


def load_graphs(path: Path) -> tuple | None:
    """The stored graphs, or ``None`` when there are none or they cannot be read."""
    global loaded
    try:
        with open(path, "rb") as handle:
            graphs = pickle.load(handle)
    except Exception:  # missing, damaged or written by other code: compiled anew
        return None
    loaded += 1
    return graphs


def store_graphs(path: Path, graphs: tuple) -> bool:
    """Write ``graphs`` to ``path`` whole (temporary file, then rename); ``False`` if they
    cannot be pickled or written (the next process then compiles them again)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                pickle.dump(graphs, stream, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except Exception:  # a cache that cannot be written only costs time
        return False
    return True
