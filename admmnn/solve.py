"""``admmnn.solve``: the functional entry point (DESIGN §8)."""
from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np

from . import admm, memory
from . import checkpoint as _ckpt
from ._backend import Timer, is_async, jit, like, namespace, to_float
from .divergence import DivergenceMonitor, warn_diverged, warn_interrupted
from .network import recover_network
from .operators import Operators
from .result import SolveResult
from .ustep import SOLVERS, make_usolver
from .validation import (as_array, check_bool, check_callable, check_choice, check_n, check_options, check_patterns,
                         check_positive, warn_zero_features)

STOP_RULES = ("gap", "residuals", "both")
#: phases timed by ``solve``; ``history["seconds_<phase>"]`` holds their cumulative seconds at each check
PHASES = ("precompute", "u", "v", "s", "dual", "check", "iterations")


def solve(
    X,
    Y,
    D,
    beta: float,
    solver: str = "exact",
    rho: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-4,
    *,
    gamma: float = 1.6,
    max_time: float | None = None,
    stop: str = "gap",
    eps_abs: float = 1e-6,
    eps_rel: float = 1e-4,
    check_every: int = 10,
    adapt_rho: bool = True,
    verbose: bool = False,
    callback=None,
    warm_start: SolveResult | None = None,
    checkpoint=None,
    checkpoint_every: int = 100,
    resume=None,
    **options,
) -> SolveResult:
    """Solve the convex two-layer ReLU program by ADMM.

    Parameters
    ----------
    X : (n, d) array (NumPy, torch or JAX), used as given (add a ones column for a bias).
    Y : (n,) or (n, C) targets.
    D : (n, P) 0/1 activation patterns.
    beta : group-lasso weight (> 0).
    solver : u-step solver: "exact" (Woodbury), a matrix-free one, or "auto"
        (exact when its n x n factor fits in ``memory_budget`` bytes, an option
        defaulting to half the available memory).
    rho : ADMM penalty; default ``0.1``. Adapted by residual balancing when ``adapt_rho``.
    max_iter : iteration limit.  tol : stop when ``gap / objective <= tol``.
    gamma : dual step length in (0, (1 + sqrt 5) / 2); 1.6 converges faster than 1
        on the problems we measured (Fortin-Glowinski step).
    max_time : wall-clock limit in seconds.
    stop : "gap" (certified relative gap <= tol), "residuals" (Boyd et al.
        §3.3 with ``eps_abs``, ``eps_rel``) or "both".
    check_every : residuals and the certificate are computed (and read back to
        the host) every this many iterations; in between, nothing is read back.
    callback : called as ``callback(k, metrics, state)`` at every check.
    warm_start : a previous ``SolveResult`` on the same X and D to start from.
    profile : time the four phases separately (default: only where that needs
        no device synchronisation, i.e. NumPy and CPU torch); otherwise one
        fused (under JAX, compiled) step per iteration.
    checkpoint : a file path; the solver state is written there (atomically) at
        the first check after every ``checkpoint_every`` iterations and when the
        solve ends. ``resume`` : a checkpoint file to continue from; a file from
        another problem is refused (see ``admmnn.checkpoint``).
    options : ``memory_budget`` (bytes; see ``admmnn.memory``), the rest is
        passed to the u-step solver.

    Divergence (NaN/Inf, an exploding objective or residuals growing without
    bound) stops with status "diverged" and a ``DivergenceWarning``; Ctrl-C
    stops with status "interrupted". Both return the last checked finite
    iterate and its certificate. (Ctrl-C during the precompute, before the
    first certificate exists, raises KeyboardInterrupt as usual.)

    Returns
    -------
    SolveResult (see its docstring). Arrays come back in the backend of X.
    """
    X = as_array(X, "X")
    warn_zero_features(X)
    xp = namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    n = X.shape[0]
    Y = as_array(Y, "Y", ndims=(1, 2))
    check_n(n, Y, "Y")
    D = check_patterns(D, n)
    check_positive("beta", beta)
    check_positive("max_iter", max_iter, integer=True)
    check_positive("tol", tol)
    check_positive("rho", rho, allow_none=True)
    check_positive("max_time", max_time, allow_none=True)
    check_positive("check_every", check_every, integer=True)
    check_positive("eps_abs", eps_abs)
    check_positive("eps_rel", eps_rel)
    if not 0 < gamma < (1 + math.sqrt(5)) / 2:
        raise ValueError(f"gamma must lie in (0, 1.618), got {gamma!r}")
    check_choice("stop", stop, STOP_RULES)
    check_choice("solver", solver, sorted(SOLVERS) + ["auto"])
    check_bool("adapt_rho", adapt_rho)
    check_bool("verbose", verbose)
    check_callable("callback", callback)
    if warm_start is not None and not isinstance(warm_start, SolveResult):
        raise TypeError(f"warm_start must be a SolveResult or None, got {type(warm_start).__name__}")
    _ckpt.check_args(checkpoint, checkpoint_every, resume, warm_start)
    memory_budget = options.pop("memory_budget", None)
    if solver != "auto":
        check_options(SOLVERS[solver], options)
    Y2 = Y if Y.ndim == 2 else Y[:, None]
    Y2 = like(Y2, X) if namespace(Y2) is not xp else xp.astype(Y2, X.dtype)
    D = like(D, X) if namespace(D) is not xp else xp.astype(D, X.dtype)

    profile = bool(options.pop("profile", not is_async(X)))
    t_start = time.perf_counter()
    timer = Timer(X)
    history = defaultdict(list)
    op = Operators(X, D, Y2.shape[1])
    rho = float(warm_start.rho if (rho is None and warm_start is not None) else (rho or 0.1))
    itemsize = X.dtype.itemsize if hasattr(X.dtype, "itemsize") else 8
    solver = memory.resolve_solver(solver, op.n, op.d, op.n_groups, itemsize, memory_budget, X)
    check_options(SOLVERS[solver], options)
    saved = writer = None
    if checkpoint is not None or resume is not None:
        fp = _ckpt.fingerprint(X, Y2, D, beta=beta, gamma=gamma, solver=solver, check_every=check_every,
                               adapt_rho=adapt_rho, **options)
        saved = _ckpt.load(resume, fp, X) if resume is not None else None
        writer = _ckpt.Checkpointer(checkpoint, checkpoint_every, fp, saved.k if saved else 0) if checkpoint else None
    if saved is not None:
        rho = saved.rho
        timer.seconds.update(saved.timings)
        history.update(saved.history)
    usolver = make_usolver(solver, op, rho, **options)
    # compiled once per problem shape under JAX; plain functions elsewhere. The CG
    # family compiles its own loop (lax.while_loop) and keeps its counts on the
    # device, so only the right-hand side of its u-step runs op by op; RBCD's
    # line search still reads two scalars per block step on the host.
    whole = jit if getattr(usolver, "jittable", False) else (lambda f, ref: f)
    u_update, step = whole(admm.u_update, X), whole(admm.step, X)
    v_update, s_update, dual_update, check = (
        jit(f, X) for f in (admm.v_update, admm.s_update, admm.dual_update, admm.check)
    )
    FTY = op.FT(Y2)
    state = saved.state if saved else warm_start.state if warm_start is not None else admm.init_state(op)
    if state.u.shape != (op.d, op.n_groups):
        raise ValueError("warm_start comes from a problem of another shape")
    t = timer("precompute", t_start)

    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc=f"admm[{solver}]", unit="it")

    def run_check(st, prev, k):
        m = {key: to_float(val) for key, val in check(op, Y2, beta, rho, st, prev, eps_abs, eps_rel).items()}
        m["gap"] = m["objective"] - m["dual_bound"]
        m["rel_gap"] = m["gap"] / max(abs(m["objective"]), np.finfo(float).tiny)
        for key, val in m.items():
            history[key].append(val)
        history["iteration"].append(k)
        history["rho"].append(rho)
        history["time"].append(t_offset + time.perf_counter() - t_start)
        for phase in PHASES:  # cumulative seconds per phase, to split a time-to-target
            history[f"seconds_{phase}"].append(timer.seconds.get(phase, 0.0))
        return m

    def converged(m):
        # a negative gap means v is still infeasible enough to beat the bound: keep going
        gap_ok = abs(m["rel_gap"]) <= tol and m["cone_violation"] <= tol
        res_ok = m["r_pri"] <= m["eps_pri"] and m["r_dual"] <= m["eps_dual"]
        return {"gap": gap_ok, "residuals": res_ok, "both": gap_ok and res_ok}[stop]

    st = prev = state
    status, k, good, t_offset = "max_iter", 0, None, history["time"][-1] if history.get("time") else 0.0
    try:
        if saved is None:
            m0 = run_check(st, st, 0)
            monitor = DivergenceMonitor(m0["objective"], 0.5 * to_float(xp.sum(Y2 * Y2)))
            good = (st, m0, 0, rho)
        else:
            k, good, monitor = saved.k, saved.good, DivergenceMonitor.from_dict(saved.monitor)
        point = (st, rho, k)  # where a resumed run would go on from
        while k < max_iter:
            k += 1
            last = k == max_iter or (max_time is not None and time.perf_counter() - t_start > max_time)
            if k % check_every == 0 or last:
                prev = st
            t = time.perf_counter()
            if profile:
                st = u_update(op, usolver, FTY, st, k)
                t = timer("u", t)
                st = v_update(op, st, beta, rho)
                t = timer("v", t)
                st = s_update(op, st)
                t = timer("s", t)
                st = dual_update(st, gamma)
                t = timer("dual", t)
            else:
                st = step(op, usolver, FTY, beta, gamma, st, k)
                t = timer("iterations", t, sync=False)
            if not (k % check_every == 0 or last):
                continue
            m = run_check(st, prev, k)
            timer("check", t)
            if bar is not None:
                bar.update(k - bar.n)
                bar.set_postfix(obj=f"{m['objective']:.5g}", gap=f"{m['rel_gap']:.1e}", rho=f"{rho:.2g}")
            reason = monitor.update(m, rho)
            if reason is not None:
                status = "diverged"
                warn_diverged(reason, k, good[2], good[1], good[3])
                break
            good = (st, m, k, rho)
            if callback is not None:
                callback(k, m, st)
            if converged(m):
                status = "optimal"
            elif max_time is not None and time.perf_counter() - t_start > max_time:
                status = "time_limit"
            elif adapt_rho:
                factor = _balance(m["r_pri"], m["r_dual"])
                if factor != 1.0:
                    rho *= factor
                    st = admm.scale_duals(st, 1.0 / factor)
                    usolver = usolver.with_rho(rho)
            point = (st, rho, k)
            if writer is not None and writer.due(k) and status == "max_iter":
                writer.write(point, good, history, monitor, timer.seconds)
            if status != "max_iter":
                break
    except KeyboardInterrupt:
        if good is None:  # stopped before the first certificate: nothing to return
            raise
        status = "interrupted"
        warn_interrupted(good[2], good[1])
    finally:
        if bar is not None:
            bar.close()
    if writer is not None and writer.last_k != point[2]:
        writer.write(point, good, history, monitor, timer.seconds)

    st, m, k_good, rho_good = good
    net = recover_network(op, st.v)
    info = dict(getattr(usolver, "info", {}))
    return SolveResult(
        v=st.v,
        network=net,
        objective=m["objective"],
        dual_bound=m["dual_bound"],
        status=status,
        n_iter=k_good,
        rho=rho_good,
        solver=usolver.name,
        history={key: np.asarray(val) for key, val in _ckpt.trim_history(history).items()},
        timings=dict(timer.seconds),
        state=st,
        info=info,
    )


def _balance(r_pri: float, r_dual: float, mu: float = 10.0, tau: float = 2.0) -> float:
    """Residual balancing (Boyd et al. §3.4.1): the factor to multiply rho by."""
    if r_pri > mu * r_dual:
        return tau
    if r_dual > mu * r_pri:
        return 1.0 / tau
    return 1.0
