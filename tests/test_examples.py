"""The integration examples run: two steps each, printing the loss and the test accuracy."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the examples in child processes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("host", ["cs231n", "autograd", "mygrad"])
def test_example_runs(host):
    if host != "cs231n" and importlib.util.find_spec(host) is None:
        pytest.skip(f"{host} is not installed (pip install fastconv[{host}])")
    res = subprocess.run([sys.executable, str(EXAMPLES / f"{host}_fashion_mnist.py"),
                          "--steps", "2", "--batch", "8"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "step    2  loss" in res.stdout and "test accuracy on" in res.stdout
