"""The endgame benchmark (issue 18): iterations, Newton steps and seconds to a certified
relative gap of 1e-2, 1e-4, 1e-6 and 1e-8 for ADMM alone, the previous default (the one-row
active-set polish, run from the checkout at ``--old``) and the new default (ADMM + the
semismooth Newton endgame), side by side with cvxpy + Clarabel and scnn's augmented
Lagrangian measured in the same run.

    python benchmarks/endgame.py                                  # every problem, every peer
    python benchmarks/endgame.py --problems tutorial --peers clarabel

"Certified at eps" is ``SolveResult.first_certified`` (``certificate.certifies``): the best
point's gap to the best bound so far in [-1e-12, eps] and its cone violation <= eps. The old
default is judged by its own history (its check's |rel gap| <= eps and violation <= eps).
Seconds are wall clock on a shared machine: compare them only as ratios within one run.
Results: benchmarks/results/endgame_<problems>.{txt,json}.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

import admmnn
from admmnn.experiments import bench
from admmnn.experiments.problems import PROBLEMS
from admmnn.experiments.problems import scnn as make_scnn

from certify import run_clarabel, run_scnn  # benchmarks/certify.py, next to this script

TARGETS = (1e-2, 1e-4, 1e-6, 1e-8)
CONFIGS = {"admm alone": {"polish": False}, "endgame": {}}
#: --quick: the smallest problem, both peers (a missing one is skipped)
QUICK = dict(problems=["correlated"], max_iter=300, max_time=20.0)

# run in the old checkout (its admmnn first on sys.path, as python -c puts the working folder there)
# on this checkout's problem, passed as an .npz file
OLD_RUNNER = r"""
import json, sys, time, warnings
import numpy as np
import admmnn
path, max_iter, max_time = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
z = np.load(path)
X, Y, D, beta = z['X'], z['Y'], z['D'], float(z['beta'])
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    res = admmnn.solve(X, Y, D, beta, tol=1e-8, max_iter=max_iter, max_time=max_time)
h = res.history
print(json.dumps({'status': str(res.status), 'rel_gap': res.rel_gap, 'objective': res.objective,
                  'iteration': h['iteration'].tolist(), 'time': h['time'].tolist(), 'rel_gap_h': h['rel_gap'].tolist(),
                  'viol': h['cone_violation'].tolist(),
                  'polish_steps': sum(1 for _ in res.info.get('polish_attempts', []))}))
"""


def run_ours(X, Y, D, beta, config, max_iter, max_time):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = admmnn.solve(X, Y, D, beta, tol=min(TARGETS), max_iter=max_iter, max_time=max_time, **config)
        seconds = time.perf_counter() - t
    tries = res.info.get("endgame_tries", [])
    row = {"status": str(res.status), "n_iter": res.n_iter, "rel_gap": res.rel_gap, "objective": res.objective,
           "dual_bound": res.dual_bound, "seconds": seconds, "newton_steps": sum(t["newton_steps"] for t in tries),
           "endgame_s": res.timings.get("endgame", 0.0), "tries": tries}
    for eps in TARGETS:
        row[f"iter_{eps:g}"], row[f"sec_{eps:g}"] = res.first_certified(eps)
    return row


def run_old(old, name, max_iter, max_time):
    """The previous default, in a subprocess from the checkout ``old``."""
    X, Y, D, beta = make_scnn() if name == "scnn" else PROBLEMS[name]()
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "problem.npz"), X=X, Y=Y, D=D, beta=beta)
        out = subprocess.run([sys.executable, "-c", OLD_RUNNER, os.path.join(tmp, "problem.npz"), str(max_iter),
                              str(max_time)], cwd=old, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    row = {"status": r["status"], "rel_gap": r["rel_gap"], "objective": r["objective"], "seconds": r["time"][-1],
           "newton_steps": None}
    gap, viol = np.abs(np.asarray(r["rel_gap_h"])), np.asarray(r["viol"])
    for eps in TARGETS:
        ok = np.flatnonzero((gap <= eps) & (viol <= eps))
        row[f"iter_{eps:g}"], row[f"sec_{eps:g}"] = ((r["iteration"][ok[0]], r["time"][ok[0]]) if len(ok) else (None, None))
    return row


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    ap = bench.parser(__doc__, quick=QUICK)
    ap.add_argument("--problems", nargs="+", default=["tutorial", "scnn", "fmnist", "fmnist-s1", "fmnist-s2", "correlated"])
    ap.add_argument("--peers", nargs="*", default=["clarabel", "scnn"], choices=["clarabel", "scnn"])
    ap.add_argument("--old", default=None, help="a checkout of the previous default (e.g. a worktree of 84d9581)")
    ap.add_argument("--max-iter", type=int, default=20000)
    ap.add_argument("--max-time", type=float, default=120.0)
    args = ap.parse_args(argv)
    tag = "_".join(args.problems) if len(args.problems) < 6 else "all"
    out = bench.Results(f"endgame_{tag}", args, __file__)
    say, record = out.say, out.record
    record.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "admmnn": admmnn.__version__,
                   "max_iter": args.max_iter, "max_time": args.max_time, "runs": []})

    say(f"endgame benchmark, admmnn {admmnn.__version__}, {record['machine']}, float64, solver defaults, "
        f"max_time {args.max_time:g} s")
    say(f"{'problem':<11}{'config':<13}" + "".join(f"{'it@' + format(e, 'g'):>9}{'s@' + format(e, 'g'):>9}" for e in TARGETS)
        + f"{'Newton':>8}{'status':>11}{'final gap':>11}")

    def line(name, cname, row):
        say(f"{name:<11}{cname:<13}" + "".join(f"{fmt(row[f'iter_{e:g}'], 'd'):>9}{fmt(row[f'sec_{e:g}'], '.2f'):>9}"
                                               for e in TARGETS)
            + f"{fmt(row.get('newton_steps'), 'd'):>8}{row['status']:>11}{row['rel_gap']:>11.1e}")

    for name in args.problems:
        if name == "scnn":
            X, Y, D, beta, gates = make_scnn(return_gates=True)
        else:
            X, Y, D, beta = PROBLEMS[name]()
        if args.old:
            row = run_old(args.old, name, args.max_iter, args.max_time)
            record["runs"].append({"problem": name, "config": "old default", **row})
            line(name, "old default", row)
        for cname, config in CONFIGS.items():
            row = run_ours(X, Y, D, beta, config, args.max_iter, args.max_time)
            record["runs"].append({"problem": name, "config": cname, **row})
            line(name, cname, row)
        ours = record["runs"][-1]
        for peer in args.peers:
            if (peer == "clarabel" or name == "scnn") and bench.missing(peer):
                out.skip(f"{name:<11}{peer}", bench.missing(peer))
                continue
            if peer == "clarabel":
                p = run_clarabel(X, Y, D, beta)
                ref = ours
            elif name == "scnn":
                p = run_scnn(X, Y, beta, gates)
                ref = run_ours(X, Y, p.pop("D"), beta, {}, args.max_iter, args.max_time)  # on scnn's own patterns
                record["runs"].append({"problem": name, "config": "endgame, scnn's patterns", **ref})
                line(name, "endgame,scnnD", ref)
            else:
                continue
            record["runs"].append({"problem": name, "config": peer, **p})
            s = f"{name:<11}{peer:<13}objective {p['objective']:.10g} in {p['seconds']:.2f} s"
            if "cone_violation" in p:
                s += f" (cone violation {p['cone_violation']:.1e})"
            s += f"; ours {ref['objective']:.10g} ({(ref['objective'] - p['objective']) / abs(p['objective']):+.1e})"
            for e in (1e-4, 1e-6, 1e-8):
                if ref[f"sec_{e:g}"]:
                    s += f"; {e:g} in {ref[f'sec_{e:g}']:.2f} s = {p['seconds'] / ref[f'sec_{e:g}']:.1f}x faster"
            say(s)
    out.write()


if __name__ == "__main__":
    main()
