"""Every backend exposes the same kernel interface: the same entry points with the same
parameters in every family (#12), so a public op dispatches to any of them alike."""
import inspect
import types

import pytest

from fastconv import _backend

from _support import COMPILED


def _entry_points(module):
    """Public callables of a kernel module or namespace, by name -> parameter names."""
    names = getattr(module, "__all__", None) or [
        n for n in vars(module) if not n.startswith("_")]
    out = {}
    for name in names:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, (type, types.ModuleType)):
            out[name] = tuple(inspect.signature(obj).parameters)
    return out


@pytest.mark.skipif(len(COMPILED) < 2, reason="needs both compiled backends built")
@pytest.mark.parametrize("family", _backend.FAMILIES)
def test_compiled_backends_export_the_same_functions(family):
    numba_k = _entry_points(_backend.kernels("numba", family))
    cython_k = _entry_points(_backend.kernels("cython", family))
    assert numba_k, f"no entry points found in the numba {family} family"
    assert numba_k == cython_k


@pytest.mark.parametrize("family", _backend.FAMILIES)
def test_reference_has_the_compiled_entry_points(family):
    """The reference adapters take the same leading parameters (the compiled conv adds
    ``algorithm``, a kernel-level override the reference has no use for)."""
    ref = _entry_points(_backend.kernels("numpy", family))
    for backend in COMPILED:
        compiled = _entry_points(_backend.kernels(backend, family))
        assert set(ref) == set(compiled), (backend, family)
        for name, params in ref.items():
            assert tuple(p for p in compiled[name] if p != "algorithm") == params, name


def test_export_lists_follow_the_registry():
    """fc.*, fastconv.functional and fastconv.reference export each family's ops, the
    same public op in the first two; testing's tolerance terms name only registry ops."""
    import fastconv as fc
    from fastconv import functional, reference, testing

    ops = [op for family in _backend.FAMILIES.values() for op in family.ops]
    top = [op for family in _backend.FAMILIES.values() if family.top_level
           for op in family.ops]
    assert functional.__all__ == ops
    assert reference.__all__ == [*ops, "layers"]
    assert [n for n in fc.__all__ if n in ops] == top
    for op in ops:
        assert callable(getattr(reference, op)), op
        if op in top:
            assert getattr(fc, op) is getattr(functional, op), op
    assert set(testing._TERMS) <= set(ops)


@pytest.mark.parametrize("family", [n for n, f in _backend.FAMILIES.items() if f.driver])
@pytest.mark.parametrize("backend", COMPILED)
def test_driven_families_export_the_raw_kernels_the_driver_calls(family, backend):
    """A family with one driver (conv): each compiled backend's module holds exactly the
    raw kernels the driver names, with the same parameters in both backends."""
    import importlib

    module, _ = _backend.FAMILIES[family].driver.split(".")
    wanted = importlib.import_module(f"fastconv._kernels.{module}").RAW_KERNELS
    raw = importlib.import_module(f"fastconv._kernels.{backend}_backend.{family}")
    assert tuple(raw.__all__) == tuple(wanted)
    other = importlib.import_module(f"fastconv._kernels.{COMPILED[0]}_backend.{family}")
    for name in wanted:
        assert (tuple(inspect.signature(getattr(raw, name)).parameters)
                == tuple(inspect.signature(getattr(other, name)).parameters)), name
