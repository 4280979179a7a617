"""``admmnn.solve``: the functional entry point; the convex program solved by ADMM, with its certificate."""
from __future__ import annotations

import math
import time

import numpy as np

from . import admm, endgame, memory, sharding
from . import checkpoint as _ckpt
from ._backend import Timer, free_memory, is_async, like, namespace, to_float
from .divergence import DivergenceMonitor, warn_interrupted
from .driver import Checked, Driver
from .loop import PHASES, STOP_RULES, ConePenaltyRule, EndgameSchedule, Loop, LoopState, StopRule
from .loop import History as Hist
from .network import recover_network
from .operators import Operators
from .result import SolveResult, Status
from .ustep import SOLVERS, make_usolver
from .validation import (as_array, check_bool, check_callable, check_choice, check_n, check_options, check_patterns,
                         check_positive, warn_zero_features)

DEFAULT_MAX_ITER = 5000
#: the cone penalty times the squared data scale, relative to the penalty of u = v
DEFAULT_CONE_WEIGHT = 10.0


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
        u-step solver: "exact" (Woodbury), a matrix-free one (``admmnn.ustep.SOLVERS``), or "auto" (the rules of ``admmnn.ustep.auto``: "exact" when its n x n factor fits in ``memory_budget`` bytes, by default half the available memory, and there is no mesh, else "pcg-nystrom-block" when its sketch fits, else "cg"; ``info["auto"]`` names the rule that fired and the sizes it compared).
    rho : float or None, default None
        Penalty of the constraint u = v; None: ``default_penalty(X, Y, beta)`` (it scales with beta and the data, also with a warm start).
    max_iter : int, default 5000
        Iteration limit.
    tol : float, default 1e-4
        Stop when the relative gap ``(objective - bound) / objective`` of the best point, against the best dual bound found in the run, lies in [0, tol] (down to -1e-12, rounding) and its relative cone violation is at most tol.
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
        Run the endgame (``admmnn.endgame``: semismooth Newton on the augmented Lagrangian, from the ADMM iterate) at iteration 100, and after a try that does not certify ``tol`` at twice (four times, when it did not improve the best point) that iteration; each try has 250 Newton steps and keeps its point only when it is closer to certified. None: run it when its reduced Newton system (P d unknowns per output column) fits in a quarter of the free memory (or ``memory_budget``) and one Newton step costs at most 3e11 flops; off with a mesh.
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
        A mesh with an axis "data" (X must be a JAX array): the rows of X, Y, D and of the slack are sharded over that axis and the weights replicated; n is padded with zero rows to a multiple of its size (``admmnn.sharding``: the padding changes nothing, and the returned state has the n real rows). With a mesh, "exact" raises ValueError (its n x n factor is not row-sharded), "auto" follows the rules of ``admmnn.ustep.auto`` without the exact one, and the polish is off (``polish=True`` raises).
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
            raise ValueError("polish=True cannot run with a mesh: the endgame's Newton systems are not row-sharded; "
                             "leave polish=None (off with a mesh)")
        polish = False
    if polish is not None:
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
    # the penalty follows beta (a warm start from another beta keeps only its cone weight)
    rho = float(default_penalty(X, Y2, beta) if rho is None else rho)
    if rho_ratio is None:
        rho_ratio = warm_start.info.get("rho_ratio") if warm_start is not None else None
        rho_ratio = default_rho_ratio(X) if rho_ratio is None else rho_ratio
    fp_ratio = rho_ratio = float(rho_ratio)
    itemsize = X.dtype.itemsize if hasattr(X.dtype, "itemsize") else 8
    n_local = n if mesh is None else (n + n_pad) // n_dev  # the rows one device holds
    d, P, C = X.shape[1], D.shape[1], Y2.shape[1]
    choice = memory.resolve_solver(solver, n_local, d, 2 * P * C, itemsize, memory_budget, X, outputs=C, mesh=mesh)
    requested, solver = solver, choice.solver
    check_options(SOLVERS[solver], options)
    if polish is None:
        budget = memory_budget if memory_budget is not None else free_memory(X)[0] // 4
        polish = mesh is None and endgame.available(n, d, P, C, budget) is None
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
    op = Operators(X, D, C, cone_scale, n_pad)

    def rebuild(op_new, rho_new):
        t = time.perf_counter()
        new = make_usolver(solver, op_new, rho_new, **options)
        timer("precompute", t)
        return new

    driver = Driver(op, make_usolver(solver, op, rho, **options), Y2, beta, alpha=alpha, gamma=gamma,
                    memory=int(anderson), safeguard=safeguard, profile=profile, eps_abs=eps_abs, eps_rel=eps_rel,
                    timer=timer, rebuild=rebuild)
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
    history = Hist(saved.history if saved else None, t_start, timer)
    schedule = EndgameSchedule(on=bool(polish))
    k0 = saved.k if saved else 0
    if saved is not None:
        sch = dict(saved.schedule)
        lstate = LoopState(saved.good, saved.polished, float(sch.get("bound", saved.good.metrics["dual_bound"])),
                           _ckpt.Position(pt, driver.rho, k0, cone_scale), int(sch.get("last_change", 0)),
                           int(sch.get("next_endgame", schedule.start)))
        monitor = DivergenceMonitor.from_dict(saved.monitor)
    else:
        lstate = LoopState(None, None, -math.inf, _ckpt.Position(pt, driver.rho, 0, cone_scale), 0, schedule.start)
        monitor = None
    deadline = None if max_time is None else t_start + max_time
    loop = Loop(driver, history, monitor, StopRule(tol, stop), ConePenaltyRule(tol, on=adapt_rho), schedule, lstate,
                deadline=deadline, writer=writer, callback=callback, bar=bar)
    status = None  # still running
    try:
        if saved is None:  # check the starting point: the first "best" point and the monitor's scale
            m0 = loop.certify(pt.x, pt.x, 0)
            loop.monitor = DivergenceMonitor(m0["objective"], 0.5 * to_float(xp.sum(Y2 * Y2)))
            loop.state = loop.state._replace(good=Checked(pt.x, m0, 0, driver.rho, cone_scale))
        status, _, _ = driver.run(pt, k0, max_iter, check_every, loop.on_check, deadline)
    except KeyboardInterrupt:
        if loop.state.good is None:  # stopped before the first certificate: nothing to return
            raise
        status = Status.INTERRUPTED
        warn_interrupted(loop.state.good.k, loop.state.good.metrics)
    finally:
        if bar is not None:
            bar.close()
    loop.checkpoint(loop.state.point.k, force=True)

    best, st, bound = loop.result_state()
    st = sharding.drop_padding(st, n_pad)
    info = dict(getattr(driver.usolver, "info", {}))
    info.update(driver.accel_counts(loop.state.point.point))
    info.update(rho_ratio=best.cone_scale**2, alpha=float(alpha), anderson=int(anderson), endgame=bool(polish),
                endgame_tries=list(loop.state.tries), polished=any(t["reason"] == "certified" for t in loop.state.tries))
    if requested == "auto":
        info["auto"] = choice.as_dict()
    if mesh is not None:
        info.update(mesh_devices=n_dev, padded_rows=n_pad)
    return SolveResult(
        v=st.v,
        network=recover_network(op, st.v),
        objective=best.metrics["objective"],
        dual_bound=bound,
        status=Status(status),
        n_iter=best.k,
        rho=best.rho,
        solver=driver.usolver.name,
        history=history.arrays(),
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
