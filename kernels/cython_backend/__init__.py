"""Cython kernels (built by setup.py). Import errors are turned into a rebuild hint by
``fastconv._backend``."""
