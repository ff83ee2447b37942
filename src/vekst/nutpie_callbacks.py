"""nutpie's C callbacks for a PyMC model, compiled once and cached on disk across processes.

nutpie samples through two C callbacks (the log density with its gradient, and the
expansion of a draw into the model's variables). ``nutpie.compile_pymc_model`` builds them
as closures over the model's shared data, which numba cannot cache, so every process
spent ~30 s of its ~40 s compile typing and linking them again, although PyTensor's
numba functions of the graph themselves load from PyTensor's disk cache.

Here the callbacks are generated as source with the graph functions and the layout of the
shared data as globals, not closures, and the shared data reach them at run time through
one array of pointers and shapes (nutpie's ``user_data``). PyTensor's cache locator then
stores them under a key made of PyTensor's key of the graph, the generated source and the
library versions, so a second process loads them instead of compiling.

Only nutpie's graph construction (``_make_functions``, private) is used; when it is not
available in the installed nutpie, :func:`compile_cached` returns ``None`` and the caller
falls back to ``nutpie.compile_pymc_model``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from importlib.metadata import version
from pathlib import Path

import numpy as np

__all__ = ["compile_cached", "with_shared_data"]

#: Bump when the generated source or the layout of the pointer array changes.
_LAYOUT_VERSION = "4"


def compile_cached(model, graph_path: Path | None = None) -> object | None:
    """nutpie's compiled model of ``model`` with callbacks cached across processes.

    Parameters
    ----------
    model
        A ``pymc.Model`` whose data stay shared (not frozen), as ``nutpie.compile_pymc_model``
        with ``freeze_model=False`` compiles it.
    graph_path
        Where the rewritten graphs of this model are kept between processes
        (:func:`vekst.graph_cache.graph_cache_path`); ``None`` rewrites them every time.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel or None
        ``None`` when the installed nutpie lacks the private graph builder used here (the
        caller then compiles with ``nutpie.compile_pymc_model``).
    """
    try:
        from nutpie.compile_pymc import (
            CompiledPyMCModel,
            _make_functions,
            _prepare_dims_and_coords,
            _rv_dict_to_flat_array_wrapper,
        )
    except ImportError:
        return None
    from pymc.initial_point import make_initial_point_fn

    from vekst.graph_cache import load_graphs, store_graphs

    initial_point = _locked(
        make_initial_point_fn(
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    stored = load_graphs(graph_path) if graph_path is not None else None
    if stored is None:
        n_dim, n_expanded, logp_graph, expand_graph, initial_point_fn, shape_info = (
            _make_functions(
                model,
                mode="NUMBA",
                compute_grad=True,
                join_expanded=True,
                pymc_initial_point_fn=initial_point,
            )
        )
        if graph_path is not None:
            store_graphs(graph_path, (n_dim, n_expanded, logp_graph, expand_graph, shape_info))
    else:
        n_dim, n_expanded, logp_graph, expand_graph, shape_info = stored
        names, _, shapes = shape_info
        free = len(model.free_RVs)
        initial_point_fn = _rv_dict_to_flat_array_wrapper(
            initial_point, names=names[:free], shapes=shapes[:free]
        )
        # The stored graphs hold the data of the process that wrote them.
        current = {variable.name: variable.get_value() for variable in model.data_vars}
        for variable in [*logp_graph.get_shared(), *expand_graph.get_shared()]:
            if variable.name in current:
                variable.set_value(current[variable.name])
    shared_data: dict[str, np.ndarray] = {}
    for variable in [*logp_graph.get_shared(), *expand_graph.get_shared()]:
        value = np.array(variable.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[variable.name] = value
    layout = _Layout.of(shared_data)
    logp_names = [variable.name for variable in logp_graph.get_shared()]
    expand_names = [variable.name for variable in expand_graph.get_shared()]
    logp_callback = _callback(
        "logp", logp_graph.vm.jit_fn, logp_names, layout, n_dim=n_dim, n_expanded=n_expanded
    )
    expand_callback = _callback(
        "expand", expand_graph.vm.jit_fn, expand_names, layout, n_dim=n_dim,
        n_expanded=n_expanded,
    )
    dims, coords = _prepare_dims_and_coords(model, shape_info)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_callback,
        compiled_expand_func=expand_callback,
        initial_point_func=initial_point_fn,
        shared_data=shared_data,
        user_data=layout.pointers(shared_data),
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_graph,
        expand_func=expand_graph,
    )


def with_shared_data(compiled, updates: Mapping[str, np.ndarray]):
    """``compiled`` (from :func:`compile_cached`) sampling with new values of its data.

    The replacement of nutpie's ``CompiledPyMCModel.with_data``, whose pointer record has
    another layout. Each value keeps its variable's dtype and rank; shapes may change.

    Raises
    ------
    KeyError
        For a name that is not shared data of the model.
    ValueError
        For a value of another rank than the variable's.
    """
    shared_data = dict(compiled.shared_data)
    for name, value in updates.items():
        if name not in shared_data:
            raise KeyError(f"unknown shared variable {name!r}; known: {sorted(shared_data)}")
        old = shared_data[name]
        new = np.array(value, dtype=old.dtype, order="C", copy=True)
        if new.ndim != old.ndim:
            raise ValueError(f"shared variable {name!r} has rank {old.ndim}, not {new.ndim}")
        new.flags.writeable = False
        shared_data[name] = new
    layout = _Layout.of(shared_data)
    return dataclasses.replace(
        compiled, shared_data=shared_data, user_data=layout.pointers(shared_data)
    )


def _locked(function: Callable) -> Callable:
    """``function`` behind a lock: nutpie calls the initial point from its chains' threads."""
    lock = threading.Lock()

    @wraps(function)
    def wrapper(*args, **kwargs):
        with lock:
            return function(*args, **kwargs)

    return wrapper


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where each shared array's pointer and shape sit in the uint64 ``user_data`` array:
    per array, its data pointer followed by its shape."""

    offsets: dict[str, int]
    ranks: dict[str, int]
    dtypes: dict[str, np.dtype]

    @classmethod
    def of(cls, shared_data: Mapping[str, np.ndarray]) -> _Layout:
        offsets, ranks, dtypes, cursor = {}, {}, {}, 0
        for name, value in shared_data.items():
            offsets[name], ranks[name], dtypes[name] = cursor, value.ndim, value.dtype
            cursor += 1 + value.ndim
        return cls(offsets, ranks, dtypes)

    def pointers(self, shared_data: Mapping[str, np.ndarray]) -> np.ndarray:
        size = sum(1 + rank for rank in self.ranks.values())
        user_data = np.zeros(max(size, 1), dtype=np.uint64)
        for name, value in shared_data.items():
            start = self.offsets[name]
            user_data[start] = value.ctypes.data
            user_data[start + 1 : start + 1 + value.ndim] = value.shape
        return user_data


def _callback(
    kind: str,
    graph_function,
    names: Sequence[str],
    layout: _Layout,
    *,
    n_dim: int,
    n_expanded: int,
):
    """The C callback of ``kind`` ("logp" or "expand") around PyTensor's numba function."""
    import numba
    import pytensor
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    # The unpacking stays outside the ``try``: inside it, numba splits every call into
    # blocks of its own, and its liveness analysis of those is quadratic (a cold compile of
    # the national model took 270 s instead of 150 s).
    arguments, unpack = [], []
    for i, name in enumerate(names):
        start, rank = layout.offsets[name], layout.ranks[name]
        shape = "".join(f"int(meta[{start + 1 + axis}]), " for axis in range(rank))
        unpack.append(
            f"    shared_{i} = numba.carray(as_pointer(meta[{start}]), ({shape}), DTYPE_{i})"
        )
        arguments.append(f"shared_{i}")
    call = ", ".join(["x", *arguments])
    meta_length = sum(1 + rank for rank in layout.ranks.values()) or 1
    unpacked = [
        f"    meta = numba.carray(user_data_, ({meta_length},), np.uint64)",
        *unpack,
        "    x = numba.carray(x_, (N_DIM,))",
    ]
    size, values = numba.types.uint64, numba.types.CPointer(numba.types.double)
    if kind == "logp":
        arguments_c = (size, values, values, values, numba.types.voidptr)
        body = [
            "def vekst_logp_callback(dim, x_, out_, logp_, user_data_):",
            "    if dim != N_DIM:",
            "        return -1",
            *unpacked,
            "    out = numba.carray(out_, (N_DIM,))",
            "    logp = numba.carray(logp_, ())",
            "    try:",
            f"        logp_value, gradient = graph_function({call})",
            "        logp[()] = logp_value",
            "        out[...] = gradient",
            "        if not np.all(np.isfinite(out)):",
            "            return 3",
            "        if not np.isfinite(logp_value):",
            "            return 4",
            "    except Exception:",
            "        return 1",
            "    return 0",
        ]
    else:
        arguments_c = (size, size, values, values, numba.types.voidptr)
        body = [
            "def vekst_expand_callback(dim, expanded, x_, out_, user_data_):",
            "    if dim != N_DIM or expanded != N_EXPANDED:",
            "        return -1",
            *unpacked,
            "    out = numba.carray(out_, (N_EXPANDED,))",
            "    try:",
            f"        (values,) = graph_function({call})",
            "        out[...] = values",
            "    except Exception:",
            "        return -2",
            "    return 0",
        ]
    signature = numba.types.int64(*arguments_c)
    source = "\n".join(body) + "\n"
    graph_key = CACHED_SRC_FUNCTIONS.get(graph_function.py_func)
    global_env = {
        # numba rebuilds a cached function's environment by importing its module by name.
        "__name__": __name__,
        "numba": numba,
        "np": np,
        "as_pointer": _as_pointer(),
        "graph_function": graph_function,
        "N_DIM": n_dim,
        "N_EXPANDED": n_expanded,
        **{f"DTYPE_{i}": layout.dtypes[name].type for i, name in enumerate(names)},
    }
    cache_key = None
    if graph_key is not None:
        # The graph's key covers its ops and constants; the source covers the layout; the
        # versions cover how numba and the libraries lower both.
        identity = "|".join(
            [
                _LAYOUT_VERSION, graph_key, source, str(n_dim), str(n_expanded),
                *(f"{name}:{layout.dtypes[name].str}" for name in names),
                *(f"{package} {version(package)}" for package in ("numba", "nutpie", "pytensor")),
                f"fastmath {pytensor.config.numba__fastmath}",
            ]
        )
        cache_key = hashlib.sha256(identity.encode()).hexdigest()
    function = compile_numba_function_src(
        source, f"vekst_{kind}_callback", global_env=global_env, cache_key=cache_key
    )
    return numba.cfunc(signature, cache=cache_key is not None)(function)


@functools.cache
def _as_pointer():
    """A numba intrinsic turning an address (uint64) into a void pointer."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, signature, arguments):
            return builder.inttoptr(arguments[0], cgutils.voidptr_t)

        return types.voidptr(address), codegen

    return as_pointer
