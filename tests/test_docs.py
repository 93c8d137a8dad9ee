"""The documentation: every public name has an entry in the API reference's sources
(docs/api/*.rst, read as text: Sphinx is not run here), and the public docstrings'
examples pass as doctests."""
import doctest
import importlib
import inspect
import re
import types
from pathlib import Path

import pytest

API_DIR = Path(__file__).resolve().parents[1] / "docs" / "api"

#: The modules whose ``__all__`` the API reference covers, with the host library each
#: needs to be imported (None: fastconv's own dependencies only).
PUBLIC_MODULES = {
    "fastconv": None,
    "fastconv.layers": None,
    "fastconv.models": None,
    "fastconv.optim": None,
    "fastconv.datasets": None,
    "fastconv.testing": None,
    "fastconv.params_io": None,
    "fastconv.reference": None,
    "fastconv.reference.layers": None,
    "fastconv.integrations.cs231n": None,
    "fastconv.integrations.autograd": "autograd",
    "fastconv.integrations.mygrad": "mygrad",
    "fastconv.distributed": None,
}


def _import(name):
    host = PUBLIC_MODULES[name]
    if host is not None:
        pytest.importorskip(host, reason=f"{name} needs {host} (pip install \"fastconv[{host}]\")")
    return importlib.import_module(name)


def api_entries():
    """(documented objects, documented modules) as full dotted names, from the autosummary
    lists and automodule directives of docs/api/*.rst."""
    objects, modules = set(), set()
    for path in sorted(API_DIR.glob("*.rst")):
        current, in_summary = None, False
        for line in path.read_text().splitlines():
            directive = re.match(r"\.\. (currentmodule|automodule|autosummary)::\s*(\S*)", line)
            if directive:
                kind, arg = directive.groups()
                in_summary = kind == "autosummary"
                if kind == "currentmodule":
                    current = arg
                elif kind == "automodule":
                    modules.add(arg)
                continue
            if in_summary and line.startswith("   ") and not line.strip().startswith(":"):
                objects.add(f"{current}.{line.strip().lstrip('~')}")
            elif in_summary and line.strip() and not line.startswith(" "):
                in_summary = False
    return objects, modules


def test_the_api_sources_are_where_this_test_reads_them():
    if not API_DIR.is_dir():
        pytest.skip(f"{API_DIR} absent: the tests run outside the source tree")
    objects, modules = api_entries()
    assert "fastconv.conv2d" in objects and "fastconv.layers" in modules


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_every_public_name_has_an_api_entry(module_name):
    if not API_DIR.is_dir():
        pytest.skip(f"{API_DIR} absent: the tests run outside the source tree")
    module = _import(module_name)
    objects, modules = api_entries()
    assert module_name in modules, f"docs/api has no '.. automodule:: {module_name}'"
    missing = []
    for name in module.__all__:
        full = f"{module_name}.{name}"
        is_module = isinstance(getattr(module, name), types.ModuleType)
        if full not in (modules if is_module else objects):
            missing.append(full)
    assert not missing, (
        f"public names without an entry in docs/api/*.rst: {missing}; add each to an "
        f"'.. autosummary::' list under '.. currentmodule:: {module_name}' (a submodule: "
        f"an '.. automodule::' directive)"
    )


def _doctests():
    """(id, DocTest) for the docstring of every public module and of every public name
    in its ``__all__``, each once; modules whose host library is missing are skipped."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    found, params = set(), []
    for module_name, host in sorted(PUBLIC_MODULES.items()):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            params.append(pytest.param(None, id=module_name, marks=pytest.mark.skip(
                reason=f"{module_name} needs {host}")))
            continue
        tests = finder.find(module)  # the module's docstring and what it defines
        for name in module.__all__:  # and what it exports from elsewhere (fastconv.conv2d)
            obj = getattr(module, name)
            if not isinstance(obj, types.ModuleType):
                tests += finder.find(obj, f"{module_name}.{name}", module=inspect.getmodule(obj))
        for test in tests:
            key = (test.filename, test.lineno)
            if test.examples and key not in found:
                found.add(key)
                params.append(pytest.param(test, id=test.name))
    return params


@pytest.mark.parametrize("test", _doctests())
def test_docstring_examples(test):
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    failed, _ = runner.run(test, out=report.append)
    assert failed == 0, "".join(report)
