"""Sphinx configuration: python -m sphinx -W -b html docs docs/_build/html"""
import fastconv

project = "fastconv"
author = "the fastconv developers"
copyright = "2026, the fastconv developers"
release = fastconv.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# The integrations and fastconv.distributed import their host libraries, optional extras
# that a docs build must not need.
autodoc_mock_imports = ["autograd", "mygrad", "mpi4py"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
# numpydoc's member tables would list every method twice (autodoc lists them too).
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"fastconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
