"""Every ```python block of README.md and of the docs' markdown pages runs as written,
each in a fresh namespace, from the project root (where their ../shared/data paths
point)."""
import re
from pathlib import Path

import pytest

import fastconv as fc
from _support import SHARED_DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: The optional host library a snippet imports, by the module name it imports.
HOSTS = ("autograd", "mygrad", "mpi4py")


def snippets():
    params = []
    for page in PAGES:
        if "_build" in page.parts or not page.is_file():
            continue
        text = page.read_text()
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, match.start()) + 1
            params.append(pytest.param(match.group(1), id=f"{page.relative_to(ROOT)}:{line}"))
    return params


def test_the_readme_has_snippets():
    if not (ROOT / "README.md").is_file():
        pytest.skip("README.md absent: the tests run outside the source tree")
    assert any(p.id.startswith("README.md:") for p in snippets())


@pytest.mark.parametrize("code", snippets())
def test_snippet_runs(code, monkeypatch):
    for host in HOSTS:
        if re.search(rf"^\s*(import|from) {host}\b", code, re.M):
            pytest.importorskip(host, reason=f"the snippet imports {host}")
    if "../shared/data" in code and not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"the snippet reads ../shared/data, absent here ({SHARED_DATA_DIR})")
    monkeypatch.chdir(ROOT)
    backend, threads = fc.get_backend(), fc.get_num_threads()
    try:
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
    finally:  # a snippet may choose a backend or a thread count for the process
        if fc.get_backend() != backend:
            fc.set_backend(backend)
        if fc.get_num_threads() != threads:
            fc.set_num_threads(threads)
