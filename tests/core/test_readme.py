"""The README's ```python blocks run, in order, in one namespace, as a reader would paste them.

The code is the README's, unchanged; only the data are made small: ``load_digits`` hands the
blocks the first ``N_DIGITS`` rows of the digits, averaged over 2 x 2 pixels (16 features, still
0..16, all ten classes), so that the endgame's Newton systems (P d unknowns, 10 outputs) stay
small. A block that needs what a test cannot have (a download, minutes) is skipped with the
reason, so that the report shows it.
"""
import re
from pathlib import Path

import pytest
import sklearn.datasets
from threadpoolctl import threadpool_limits

README = Path(__file__).resolve().parents[2] / "README.md"
N_DIGITS = 300

# text that marks a block, and why that block is not run here
SKIPPED = {
    'load_dataset("cifar10"': "downloads CIFAR-10 (torchvision) into data/; the tests run offline",
    "mesh=mesh": "minutes: on these data the JAX solve (float32, JAX's default) runs to max_iter = 5000, "
                 "about 110 s on 2 cores; sharded solves are tested in tests/core/test_sharding.py",
}


def python_blocks():
    """(line of the first code line in README.md, code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.M | re.S)]


def why_skipped(code):
    return next((reason for mark, reason in SKIPPED.items() if mark in code), None)


BLOCKS = python_blocks()


def small_digits(load=sklearn.datasets.load_digits):
    """``load_digits(return_X_y=True)`` on a few rows at 4 x 4 pixels."""
    def load_digits(*, return_X_y=False, **kwargs):
        assert return_X_y, "the README's examples call load_digits(return_X_y=True)"
        X, y = load(return_X_y=True, **kwargs)
        X = X.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
        return X[:N_DIGITS], y[:N_DIGITS]
    return load_digits


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 4, [line for line, _ in BLOCKS]


def test_readme_python_blocks_run_in_order(monkeypatch):
    monkeypatch.setattr(sklearn.datasets, "load_digits", small_digits())
    namespace = {"__name__": "readme"}
    ran = 0
    # one BLAS thread: small matrices gain nothing from more, and on a busy 2-core machine
    # threads waiting for each other made these blocks 10x slower
    with threadpool_limits(limits=1, user_api="blas"):
        for line, code in BLOCKS:
            if why_skipped(code):
                continue
            # blank lines in front: a traceback names the README's own line numbers
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), namespace)
            ran += 1
    assert ran >= 2
    # what the examples show: certified fits
    assert namespace["clf"].result_.status == "optimal"
    assert namespace["res"].status == "optimal"


@pytest.mark.parametrize("line", [line for line, code in BLOCKS if why_skipped(code)])
def test_readme_block_not_run(line):
    pytest.skip(f"README.md line {line}: {why_skipped(dict(BLOCKS)[line])}")
