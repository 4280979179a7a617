"""When the polish is tried (issue 11): iterations and seconds to a certified gap with
``solve()`` defaults on the tests' oracle problems (tol 1e-6) and the tutorial's fit
(tol 1e-4, max_iter 500, as in notebooks/tutorial.ipynb).

    python benchmarks/polish_schedule.py binary multiclass regression correlated tutorial

To compare two versions of the library, run it under each checkout alternately
(``PYTHONPATH=<checkout>``) and compare seconds only between neighbouring runs.
"""
from __future__ import annotations

import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from problems import PROBLEMS  # noqa: E402

import admmnn  # noqa: E402


def main(names):
    print(f"admmnn from {os.path.dirname(admmnn.__file__)}")
    for name in names:
        X, Y, D, beta = PROBLEMS[name]()
        tol, max_iter = (1e-4, 500) if name == "tutorial" else (1e-6, 2000)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = admmnn.solve(X, Y, D, beta, tol=tol, max_iter=max_iter)
        tries = [(a["iteration"], f"{a['rel_gap']:.1e}") for a in res.info["polish_attempts"]]
        print(f"{name:<11} tol {tol:g}: {res.status} at iteration {res.n_iter}, rel gap {res.rel_gap:.1e}, "
              f"{time.perf_counter() - t:.2f} s (polish {res.timings.get('polish', 0.0):.2f} s), tries {tries}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["binary", "multiclass", "regression", "correlated", "tutorial"])
