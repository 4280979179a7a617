"""``admmnn.solve``: the functional entry point; the convex program solved by ADMM, with its certificate."""
from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np

from . import admm, certificate, memory, sharding
from . import checkpoint as _ckpt
from ._backend import Timer, is_async, like, namespace, to_float
from .divergence import DivergenceMonitor, warn_diverged, warn_interrupted
from .driver import Checked, Driver
from .network import recover_network
from .operators import Operators
from .polish import polish as polish_point
from .result import SolveResult
from .ustep import SOLVERS, make_usolver
from .validation import (as_array, check_bool, check_callable, check_choice, check_n, check_options, check_patterns,
                         check_positive, warn_zero_features)

STOP_RULES = ("gap", "residuals", "both")
#: phases timed by ``solve``; ``history["seconds_<phase>"]`` holds their cumulative seconds at each check
PHASES = ("precompute", "u", "v", "s", "dual", "accel", "check", "polish", "iterations")
DEFAULT_MAX_ITER = 5000
#: the cone penalty times the squared data scale, relative to the penalty of u = v
DEFAULT_CONE_WEIGHT = 10.0
#: iterations between two penalty changes of ``adapt_rho``, and the factor of a change
ADAPT_EVERY = 100
CONE_STEP = 5.0
#: the first iteration at which the polish is tried (then at twice the iteration of the last try,
#: or at POLISH_BACKOFF times it when that try did not improve the certificate at all)
POLISH_FROM = 200
POLISH_BACKOFF = 4
#: the largest n * d at which polish=None tries the polish
POLISH_MAX_SIZE = 200_000
#: the polish's budget at iteration k: this many Newton steps per iteration, shared by the C output columns
POLISH_STEPS = 1.0


def solve(
    X,
    Y,
    D,
    beta: float,
    solver: str = "exact",
    rho: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-4,
    *,
    rho_ratio: float | None = None,
    alpha: float = 1.7,
    gamma: float = 1.0,
    anderson: int | None = None,
    safeguard: float = 1.0,
    polish: bool | None = None,
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
    mesh=None,
    **options,
) -> SolveResult:
    """Solve the convex two-layer ReLU program by ADMM and certify the result.

    Parameters
    ----------
    X : array of shape (n, d)
        Inputs (NumPy, torch or JAX), used as given: add a ones column for a bias.
    Y : array of shape (n,) or (n, C)
        Targets.
    D : array of shape (n, P)
        0/1 activation patterns, ``D[:, i] = 1[X h_i >= 0]``.
    beta : float
        Group-lasso weight (> 0), in the units of X times Y.
    solver : str, default "exact"
        u-step solver: "exact" (Woodbury), a matrix-free one (``admmnn.ustep.SOLVERS``), or "auto" (the fastest solver of the measured crossover table ``admmnn/ustep/crossover.csv`` at the nearest shape, among those that fit in ``memory_budget`` bytes, by default half the available memory; ``info["auto"]`` says which and why).
    rho : float or None, default None
        Penalty of the constraint u = v; None: ``default_penalty(X, Y, beta)`` (it scales with beta and the data, also with a warm start).
    max_iter : int, default 5000
        Iteration limit.
    tol : float, default 1e-4
        Stop when the certified relative gap ``gap / objective`` and the relative cone violation are both at most tol.
    rho_ratio : float or None, default None
        Penalty of the cone constraint G u = s divided by rho; None: ``default_rho_ratio(X)``, or the warm start's final ratio. A change needs a new u-step factorisation.
    alpha : float, default 1.7
        Over-relaxation in (0, 2); 1 is plain ADMM.
    gamma : float, default 1.0
        Dual step length in (0, (1 + sqrt 5) / 2).
    anderson : int or None, default None
        Memory (columns) of the safeguarded Anderson acceleration; 0 turns it off. None: 5, and 0 with a mesh (its memory is one flat vector of the iterates, which the compiler gathers on every device at each iteration: O(n PC) bytes of communication, see ``admmnn.sharding``).
    safeguard : float, default 1.0
        An extrapolated point is kept only if its fixed-point residual is at most this times its base point's (>= 1).
    polish : bool or None, default None
        At iterations 200, 400, 800, ..., try the active-set Newton polish (``admmnn.polish``) of the iterate, with at most k / C Newton steps per output column (k in all) at iteration k, and stop with its point when it certifies ``tol``; after a try that does not improve the certificate at all, the next waits until 4 k. None: try it when ``n * d <= 2e5`` (beyond, one Newton step costs hundreds of iterations).
    max_time : float or None, default None
        Wall-clock limit in seconds.
    stop : str, default "gap"
        "gap" (certified relative gap <= tol), "residuals" (the primal and dual residual rule of Boyd et al., section 3.3, with ``eps_abs`` and ``eps_rel``) or "both".
    eps_abs : float, default 1e-6
        Absolute tolerance of the "residuals" rule.
    eps_rel : float, default 1e-4
        Relative tolerance of the "residuals" rule.
    check_every : int, default 10
        Residuals and the certificate are computed (in float64) and read back every this many iterations.
    adapt_rho : bool, default True
        Multiply the cone penalty by 5 (a new u-step factorisation) when the cone violation is at least a quarter of the relative gap, at most every 100 iterations; the u = v penalty never moves.
    verbose : bool, default False
        Show a tqdm progress bar.
    callback : callable or None, default None
        Called as ``callback(k, metrics, state)`` at every check.
    warm_start : SolveResult or None, default None
        A previous result on the same X and D to start from.
    checkpoint : str or os.PathLike or None, default None
        File the solver state (accelerator memory included) is written to, atomically, at the first check after every ``checkpoint_every`` iterations and when the solve ends.
    checkpoint_every : int, default 100
        Iterations between checkpoints.
    resume : str or os.PathLike or None, default None
        A checkpoint file to continue from (bit-identically); a file of another problem is refused.
    mesh : jax.sharding.Mesh or None, default None
        A mesh with an axis "data" (X must be a JAX array): the rows of X, Y, D and of the slack are sharded over that axis and the weights replicated; n is padded with zero rows to a multiple of its size (``admmnn.sharding``: the padding changes nothing, and the returned state has the n real rows). With a mesh, "exact" raises ValueError (its n x n factor is not row-sharded), "auto" picks ``sharding.AUTO_SOLVER``, and the polish is off (``polish=True`` raises).
    **options
        ``memory_budget`` (bytes; see ``admmnn.memory``), ``profile`` (time the phases separately; the default where that needs no device synchronisation); the rest goes to the u-step solver.

    Returns
    -------
    SolveResult
        See its docstring; arrays come back in the backend of X, ``status`` is a ``Status``.

    Notes
    -----
    Divergence (NaN/Inf, an exploding objective or residuals growing without
    bound) stops with status "diverged" and a ``DivergenceWarning``; Ctrl-C
    stops with status "interrupted". Both return the last checked finite
    iterate and its certificate. (Ctrl-C during the precompute, before the
    first certificate exists, raises KeyboardInterrupt as usual.)
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
    check_positive("rho_ratio", rho_ratio, allow_none=True)
    check_positive("max_time", max_time, allow_none=True)
    check_positive("check_every", check_every, integer=True)
    check_positive("eps_abs", eps_abs)
    check_positive("eps_rel", eps_rel)
    if not 0 < gamma < (1 + math.sqrt(5)) / 2:
        raise ValueError(f"gamma must lie in (0, 1.618), got {gamma!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 2):
        raise ValueError(f"alpha must lie in (0, 2), got {alpha!r}")
    if anderson is None:
        anderson = 5 if mesh is None else 0
    if isinstance(anderson, bool) or not isinstance(anderson, (int, np.integer)) or not 0 <= anderson <= 100:
        raise ValueError(f"anderson must be an integer memory in [0, 100] (0: off), got {anderson!r}")
    if not (isinstance(safeguard, (int, float)) and math.isfinite(safeguard) and safeguard >= 1):
        raise ValueError(f"safeguard must be a finite number >= 1, got {safeguard!r}")
    check_choice("stop", stop, STOP_RULES)
    check_choice("solver", solver, sorted(SOLVERS) + ["auto"])
    check_bool("adapt_rho", adapt_rho)
    if mesh is not None:
        n_dev = sharding.check_mesh(mesh, X)
        solver = sharding.check_solver(solver)
        if polish:
            raise ValueError("polish=True cannot run with a mesh: the active-set polish is host NumPy code; "
                             "leave polish=None (off with a mesh)")
        polish = False
    if polish is None:
        polish = n * X.shape[1] <= POLISH_MAX_SIZE
    check_bool("polish", polish)
    check_bool("verbose", verbose)
    check_callable("callback", callback)
    if warm_start is not None and not isinstance(warm_start, SolveResult):
        raise TypeError(f"warm_start must be a SolveResult or None, got {type(warm_start).__name__}")
    _ckpt.check_args(checkpoint, checkpoint_every, resume, warm_start)
    memory_budget = options.pop("memory_budget", None)
    profile = bool(options.pop("profile", not is_async(X)))
    if solver != "auto":
        check_options(SOLVERS[solver], options)
    Y2 = Y if Y.ndim == 2 else Y[:, None]
    Y2 = like(Y2, X) if namespace(Y2) is not xp else xp.astype(Y2, X.dtype)
    D = like(D, X) if namespace(D) is not xp else xp.astype(D, X.dtype)
    n_pad = 0
    if mesh is not None:
        n_pad = sharding.padding(n, mesh)
        X, Y2, D = sharding.shard_rows(mesh, X, Y2, D, pad=n_pad)

    t_start = time.perf_counter()
    timer = Timer(X)
    history = defaultdict(list)
    # the penalty follows beta (a warm start from another beta keeps only its cone weight)
    rho = float(default_penalty(X, Y2, beta) if rho is None else rho)
    if rho_ratio is None:
        rho_ratio = warm_start.info.get("rho_ratio") if warm_start is not None else None
        rho_ratio = default_rho_ratio(X) if rho_ratio is None else rho_ratio
    fp_ratio = rho_ratio = float(rho_ratio)
    itemsize = X.dtype.itemsize if hasattr(X.dtype, "itemsize") else 8
    n_local = n if mesh is None else (n + n_pad) // n_dev  # the rows one device holds
    choice = memory.resolve_solver(solver, n_local, X.shape[1], 2 * D.shape[1] * Y2.shape[1], itemsize,
                                   memory_budget, X, outputs=Y2.shape[1])
    requested, solver = solver, choice.solver
    check_options(SOLVERS[solver], options)
    saved = writer = None
    if checkpoint is not None or resume is not None:
        fp = _ckpt.fingerprint(X, Y2, D, beta=beta, gamma=gamma, alpha=alpha, anderson=int(anderson),
                               safeguard=safeguard, rho_ratio=fp_ratio, solver=solver, check_every=check_every,
                               adapt_rho=adapt_rho, **options)
        saved = _ckpt.load(resume, fp, X) if resume is not None else None
        writer = _ckpt.Checkpointer(checkpoint, checkpoint_every, fp, saved.k if saved else 0) if checkpoint else None
    cone_scale = math.sqrt(rho_ratio)
    if saved is not None:  # the saved weight itself: sqrt(x**2) may round differently
        rho, cone_scale = saved.rho, saved.cone_scale
        timer.seconds.update(saved.timings)
        history.update(saved.history)
    op = Operators(X, D, Y2.shape[1], cone_scale, n_pad)
    usolver = make_usolver(solver, op, rho, **options)
    driver = Driver(op, usolver, Y2, beta, alpha=alpha, gamma=gamma, memory=int(anderson), safeguard=safeguard,
                    profile=profile, eps_abs=eps_abs, eps_rel=eps_rel, timer=timer)
    if saved is not None:
        pt = driver.start(saved.state, saved.accel)
    else:
        if warm_start is None:
            state = admm.init_state(op)
        else:
            state = warm_start.state if mesh is None else sharding.place_state(warm_start.state, mesh, n_pad)
            state = admm.rescale_cone(state, cone_scale)
        if state.u.shape != (op.d, op.n_groups):
            raise ValueError("warm_start comes from a problem of another shape")
        pt = driver.start(state)
    timer("precompute", t_start)

    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc=f"admm[{solver}]", unit="it")
    t_offset = history["time"][-1] if history.get("time") else 0.0

    def record(m, k):
        for key, val in m.items():
            history[key].append(val)
        history["iteration"].append(k)
        history["rho"].append(driver.rho)
        history["rho_ratio"].append(driver.op.cone_scale**2)
        history["time"].append(t_offset + time.perf_counter() - t_start)
        for phase in PHASES:  # cumulative seconds per phase, to split a time-to-target
            history[f"seconds_{phase}"].append(timer.seconds.get(phase, 0.0))

    def converged(m):
        # a negative gap means v is still infeasible enough to beat the bound: keep going
        gap_ok = abs(m["rel_gap"]) <= tol and m["cone_violation"] <= tol
        res_ok = m["r_pri"] <= m["eps_pri"] and m["r_dual"] <= m["eps_dual"]
        return {"gap": gap_ok, "residuals": res_ok, "both": gap_ok and res_ok}[stop]

    loop = {"good": saved.good if saved else None, "point": _ckpt.Position(pt, driver.rho, saved.k if saved else 0, cone_scale),
            "polish": [], "last_change": 0, "next_polish": POLISH_FROM}
    if saved is not None:
        loop.update(saved.schedule)

    def schedule():
        return {"last_change": loop["last_change"], "next_polish": loop["next_polish"]}

    def checked(st, m, k):
        return Checked(st, m, k, driver.rho, driver.op.cone_scale)

    def polish_due(k):
        if not polish or stop == "residuals" or k < loop["next_polish"]:
            return False
        loop["next_polish"] = 2 * k
        return True

    def try_polish(fx, m, k):
        """Polish ``fx``; when it certifies a smaller gap, record it and make it the result."""
        t = time.perf_counter()
        sigma = driver.op.cone_scale
        mu = xp.maximum(-driver.rho * sigma * fx.nu, 0)
        # a budget in Newton steps (not seconds), so that results stay reproducible
        pr = polish_point(driver.op, Y2, beta, fx.v, u=fx.u, nu_mu=mu, max_steps=max(2, int(POLISH_STEPS * k / op.C)))
        timer("polish", t)
        loop["polish"].append({"iteration": k, "seconds": time.perf_counter() - t, "rel_gap": float(pr.rel_gap)})
        if not pr.info.get("improved"):  # the active set is still far off: wait longer for the next try
            loop["next_polish"] = POLISH_BACKOFF * k
        if not (pr.info.get("improved") and abs(pr.rel_gap) < abs(m["rel_gap"])):
            return None
        u = like(pr.u, X)  # in X's dtype: score the point returned, not the float64 one polished
        obj, viol = (to_float(a) for a in certificate.objective(driver.cert_op, driver.cast_array(u), driver.cert_Y, beta))
        gap = obj - float(pr.dual_bound)
        mp = dict(m, objective=obj, dual_bound=float(pr.dual_bound), cone_violation=viol, gap=gap,
                  rel_gap=gap / max(abs(obj), np.finfo(float).tiny))
        if not converged(mp):  # ADMM goes on from its own iterate
            return None
        record(mp, k)
        loop["good"] = checked(fx._replace(u=u, v=u), mp, k)
        loop["polished"] = True
        return mp

    def rebuild(op_new, rho_new):
        t = time.perf_counter()
        new = make_usolver(solver, op_new, rho_new, **options)
        timer("precompute", t)
        return new

    def on_check(k, fx, x, pt):
        t = time.perf_counter()
        m = driver.check(fx, x)
        record(m, k)
        timer("check", t)
        if bar is not None:
            bar.update(k - bar.n)
            bar.set_postfix(obj=f"{m['objective']:.5g}", gap=f"{m['rel_gap']:.1e}", rho=f"{driver.rho:.2g}")
        reason = monitor.update(m, driver.rho)
        if reason is not None:
            good = loop["good"]
            warn_diverged(reason, k, good.k, good.metrics, good.rho)
            return "diverged", pt
        loop["good"] = checked(fx, m, k)
        if callback is not None:
            callback(k, m, fx)
        status = None
        if converged(m):
            status = "optimal"
        elif polish_due(k) and try_polish(fx, m, k) is not None:
            return "optimal", pt
        elif max_time is not None and time.perf_counter() - t_start > max_time:
            status = "time_limit"
        elif adapt_rho and k - loop["last_change"] >= ADAPT_EVERY and _cone_too_weak(m, tol):
            pt = driver.change_rho(pt, 1.0, CONE_STEP, rebuild)
            loop["last_change"] = k
        loop["point"] = _ckpt.Position(pt, driver.rho, k, driver.op.cone_scale)
        if writer is not None and writer.due(k) and status is None:
            writer.write(loop["point"], loop["good"], history, monitor, timer.seconds, schedule())
        return status, pt

    status = None  # still running
    try:
        if saved is None:
            st0 = pt.x
            m0 = driver.check(st0, st0)
            record(m0, 0)
            monitor = DivergenceMonitor(m0["objective"], 0.5 * to_float(xp.sum(Y2 * Y2)))
            loop["good"] = checked(st0, m0, 0)
            k0 = 0
        else:
            monitor = DivergenceMonitor.from_dict(saved.monitor)
            k0 = saved.k
        deadline = None if max_time is None else t_start + max_time
        status, _, _ = driver.run(pt, k0, max_iter, check_every, on_check, deadline)
    except KeyboardInterrupt:
        if loop["good"] is None:  # stopped before the first certificate: nothing to return
            raise
        status = "interrupted"
        warn_interrupted(loop["good"].k, loop["good"].metrics)
    finally:
        if bar is not None:
            bar.close()
    if writer is not None and writer.last_k != loop["point"].k:
        writer.write(loop["point"], loop["good"], history, monitor, timer.seconds, schedule())

    good = loop["good"]
    st = admm.rescale_cone(good.state, 1.0 / good.cone_scale)  # the result's state is in unweighted units
    st = sharding.drop_padding(st, n_pad)
    net = recover_network(op, st.v)
    info = dict(getattr(driver.usolver, "info", {}))
    info.update(driver.accel_counts(loop["point"].point))
    info.update(rho_ratio=good.cone_scale**2, alpha=float(alpha), anderson=int(anderson),
                polished=bool(loop.get("polished", False)), polish_attempts=loop["polish"])
    if requested == "auto":
        info["auto"] = choice.as_dict()
    if mesh is not None:
        info.update(mesh_devices=n_dev, padded_rows=n_pad)
    return SolveResult(
        v=st.v,
        network=net,
        objective=good.metrics["objective"],
        dual_bound=good.metrics["dual_bound"],
        status=status,
        n_iter=good.k,
        rho=good.rho,
        solver=driver.usolver.name,
        history={key: np.asarray(val) for key, val in _ckpt.trim_history(history).items()},
        timings=dict(timer.seconds),
        state=st,
        info=info,
    )


def _scales(X, Y=None) -> tuple[float, float]:
    """Data scales: ``s_X = ||X||_F / sqrt(d)`` (root-mean-square column norm) and
    ``s_Y = ||Y||_F / sqrt(C)``."""
    xp = namespace(X)
    s_x = to_float(xp.sqrt(xp.sum(X * X))) / math.sqrt(X.shape[1])
    if Y is None:
        return s_x, 1.0
    s_y = to_float(xp.sqrt(xp.sum(Y * Y))) / math.sqrt(Y.shape[1] if Y.ndim == 2 else 1)
    return s_x, s_y


def default_penalty(X, Y, beta: float) -> float:
    """The default penalty of u = v: ``beta * s_X / s_Y`` (see ``_scales``), so
    that it follows beta and the units of the data (beta has the units of X times
    Y; a penalty on u, those of X squared)."""
    s_x, s_y = _scales(X, Y)
    if not (s_x > 0 and s_y > 0):
        return float(beta)
    return float(beta) * s_x / s_y


def default_rho_ratio(X) -> float:
    """The default ratio of the cone penalty to that of u = v:
    ``DEFAULT_CONE_WEIGHT / s_X^2`` (a penalty on G u = s is unitless, one on u has
    the units of X squared)."""
    s_x, _ = _scales(X)
    return DEFAULT_CONE_WEIGHT / s_x**2 if s_x > 0 else 1.0


def _cone_too_weak(m: dict, tol: float) -> bool:
    """The cone penalty is too weak when the cone violation, above ``tol``, is
    a large part of what keeps the gap open: at least a quarter of the relative gap
    (a negative gap is the extreme case, the infeasible iterate beating the bound)."""
    return m["cone_violation"] > tol and (m["rel_gap"] < 0 or m["cone_violation"] >= 0.25 * m["rel_gap"])
