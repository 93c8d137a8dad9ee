"""The version, in one place: ``fastconv.__version__`` and the package metadata
(pyproject.toml reads it) both come from here."""
__version__ = "0.1.0"
