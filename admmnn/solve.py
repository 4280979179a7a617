"""``admmnn.solve``: the functional entry point; the convex program solved by ADMM, with its certificate."""
from __future__ import annotations

import math
import time
from dataclasses import replace

from . import admm, endgame, memory, sharding
from . import checkpoint as _ckpt
from ._backend import Timer, free_memory, is_async, like, namespace, to_float
from .driver import Driver
from .loop import EndgameSchedule, Loop
from .network import recover_network
from .operators import Operators
from .result import SolveResult, Status
from .settings import Settings
from .ustep import SOLVERS, make_usolver
from .validation import (
    as_array,
    check_callable,
    check_choice,
    check_n,
    check_options,
    check_patterns,
    warn_zero_features,
)

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
        Run the endgame (``admmnn.endgame``: semismooth Newton on the augmented Lagrangian, from the ADMM iterate) at iteration 100, or later when ten of its Newton steps cost more flops than that many ADMM iterations (``endgame.first_try``: the try never costs much more than the iterations before it), and after a try that does not certify ``tol`` at twice (four times, when it did not improve the best point) that iteration; each try has 250 Newton steps and keeps its point only when it is closer to certified. None: run it when its reduced Newton system (P d unknowns per output column) fits in a quarter of the free memory (or ``memory_budget``) and one Newton step costs at most 3e11 flops; off with a mesh.
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
    cfg = Settings(beta, max_iter, tol, rho, rho_ratio, alpha, gamma, anderson, safeguard, polish, max_time, stop,
                   eps_abs, eps_rel, check_every, adapt_rho, verbose, checkpoint_every,
                   options.pop("memory_budget", None), options.pop("profile", None))
    check_choice("solver", solver, sorted(SOLVERS) + ["auto"])
    check_callable("callback", callback)
    if warm_start is not None and not isinstance(warm_start, SolveResult):
        raise TypeError(f"warm_start must be a SolveResult or None, got {type(warm_start).__name__}")
    _ckpt.check_args(checkpoint, checkpoint_every, resume, warm_start)
    X, Y2, D = _data(X, Y, D)
    n, d, P, C = X.shape[0], X.shape[1], D.shape[1], Y2.shape[1]
    n_dev, n_pad = 1, 0
    if mesh is not None:
        n_dev, solver = sharding.check_mesh(mesh, X), sharding.check_solver(solver)
        if cfg.polish:
            raise ValueError("polish=True cannot run with a mesh: the endgame's Newton systems are not row-sharded; "
                             "leave polish=None (off with a mesh)")
        n_pad = sharding.padding(n, mesh)
        X, Y2, D = sharding.shard_rows(mesh, X, Y2, D, pad=n_pad)
    if solver != "auto":
        check_options(SOLVERS[solver], options)
    cfg = replace(cfg, anderson=(5 if mesh is None else 0) if cfg.anderson is None else cfg.anderson,
                  profile=not is_async(X) if cfg.profile is None else bool(cfg.profile))

    t_start = time.perf_counter()
    timer = Timer(X)
    # the penalty follows beta (a warm start from another beta keeps only its cone weight)
    rho = float(default_penalty(X, Y2, beta) if cfg.rho is None else cfg.rho)
    ratio = cfg.rho_ratio if cfg.rho_ratio is not None else (warm_start.info.get("rho_ratio") if warm_start else None)
    ratio = float(default_rho_ratio(X) if ratio is None else ratio)
    itemsize = X.dtype.itemsize if hasattr(X.dtype, "itemsize") else 8
    choice = memory.resolve_solver(solver, (n + n_pad) // n_dev, d, 2 * P * C, itemsize, cfg.memory_budget, X,
                                   outputs=C, mesh=mesh)
    check_options(SOLVERS[choice.solver], options)
    endgame_memory = cfg.memory_budget if cfg.memory_budget is not None else free_memory(X)[0] // 4
    if cfg.polish is None:
        cfg = replace(cfg, polish=mesh is None and endgame.available(n, d, P, C, endgame_memory) is None)
    saved = writer = None
    if checkpoint is not None or resume is not None:
        fp = _ckpt.fingerprint(X, Y2, D, beta=beta, gamma=cfg.gamma, alpha=cfg.alpha, anderson=int(cfg.anderson),
                               safeguard=cfg.safeguard, rho_ratio=ratio, solver=choice.solver,
                               check_every=cfg.check_every, adapt_rho=cfg.adapt_rho, **options)
        saved = _ckpt.load(resume, fp, X) if resume is not None else None
        writer = _ckpt.Checkpointer(checkpoint, checkpoint_every, fp, saved.k if saved else 0) if checkpoint else None
    cone_scale = math.sqrt(ratio)
    if saved is not None:  # the saved weight itself: sqrt(x**2) may round differently
        rho, cone_scale = saved.rho, saved.cone_scale
        timer.seconds.update(saved.timings)
    op = Operators(X, D, C, cone_scale, n_pad)

    def rebuild(op_new, rho_new):  # a new u-step solver (factorisation) after a change of the cone weight
        t = time.perf_counter()
        new = make_usolver(choice.solver, op_new, rho_new, **options)
        timer("precompute", t)
        return new

    driver = Driver(op, make_usolver(choice.solver, op, rho, **options), Y2, beta, alpha=cfg.alpha, gamma=cfg.gamma,
                    memory=int(cfg.anderson), safeguard=cfg.safeguard, profile=cfg.profile, eps_abs=cfg.eps_abs,
                    eps_rel=cfg.eps_rel, timer=timer, rebuild=rebuild)
    pt = _start(driver, op, saved, warm_start, mesh, n_pad)
    timer("precompute", t_start)
    loop = Loop.start(driver, cfg, pt, saved, t_start, writer=writer, callback=callback,
                      schedule=EndgameSchedule(on=bool(cfg.polish), memory=float(endgame_memory),
                                               start=endgame.first_try(n, d, P, C, endgame_memory)),
                      bar_desc=f"admm[{choice.solver}]")
    status = loop.run(pt, saved.k if saved else 0)

    best, st, bound = loop.result_state()
    st = sharding.drop_padding(st, n_pad)
    info = dict(getattr(driver.usolver, "info", {}))
    info.update(driver.accel_counts(loop.state.point.point))
    info.update(rho_ratio=best.cone_scale**2, alpha=float(cfg.alpha), anderson=int(cfg.anderson),
                endgame=bool(cfg.polish), endgame_tries=list(loop.state.tries),
                polished=any(t["reason"] == "certified" for t in loop.state.tries))
    if solver == "auto":
        info["auto"] = choice.as_dict()
    if mesh is not None:
        info.update(mesh_devices=n_dev, padded_rows=n_pad)
    return SolveResult(v=st.v, network=recover_network(op, st.v), objective=best.metrics["objective"],
                       dual_bound=bound, status=Status(status), n_iter=best.k, rho=best.rho,
                       solver=driver.usolver.name, history=loop.history.arrays(), timings=dict(timer.seconds),
                       state=st, info=info)


def _data(X, Y, D):
    """X (n, d) in a real floating dtype, Y as (n, C) and D in X's library and dtype."""
    X = as_array(X, "X")
    warn_zero_features(X)
    xp = namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    Y = as_array(Y, "Y", ndims=(1, 2))
    check_n(X.shape[0], Y, "Y")
    D = check_patterns(D, X.shape[0])
    Y2 = Y if Y.ndim == 2 else Y[:, None]
    Y2 = like(Y2, X) if namespace(Y2) is not xp else xp.astype(Y2, X.dtype)
    D = like(D, X) if namespace(D) is not xp else xp.astype(D, X.dtype)
    return X, Y2, D


def _start(driver, op, saved, warm_start, mesh, n_pad):
    """The loop's first point: from a checkpoint, a warm start, or zero."""
    if saved is not None:
        return driver.start(saved.state, saved.accel)
    if warm_start is None:
        state = admm.init_state(op)
    else:
        state = warm_start.state if mesh is None else sharding.place_state(warm_start.state, mesh, n_pad)
        state = admm.rescale_cone(state, op.cone_scale)
    if state.u.shape != (op.d, op.n_groups):
        raise ValueError("warm_start comes from a problem of another shape")
    return driver.start(state)


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
