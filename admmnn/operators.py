"""Matrix-free operators F, F^T, G, G^T of the convex program (never formed: one GEMM each).

The variable ``u`` stacks 2*P*C groups of ``d`` weights as a (d, 2*P*C) array:
column ``h*P*C + p*C + c`` holds group (h, p, c), with h = 0 for the positive
neurons ``v_pc`` and h = 1 for the negative ones ``w_pc``. With this layout every
operator is one GEMM on an (n, d) by (d, k) shape, and no ``D_i X``, no ``F``
and no (n, d, P)-sized temporary is ever formed:

* ``F u  = sum_p D_p X (v_p - w_p)``           -> (n, C)
* ``F^T r = [X^T (D_p r_c)]_pc, negated for w``  -> (d, 2PC)
* ``G u  = (2 D_p - 1) X u_hpc``               -> (n, 2PC)
* ``G^T s = X^T ((2 D_p - 1) s_hpc)``          -> (d, 2PC)

The ``*_batch`` variants apply F and F^T to r vectors at once, stacked along a
trailing axis: U (d, 2PC, r) is one GEMM with X on a (d, PC*r) shape. Since
``G^T G = I_{2PC} (x) X^T X``, products with G^T G need only ``gram()``.

``cone_scale`` (sigma) weights the cone constraint: ``G`` above is multiplied by
sigma, so ``G^T G = sigma^2 I (x) X^T X``. ADMM with one penalty rho on
``u = v`` and on ``sigma G u = sigma s`` is ADMM with the two penalties
``rho_1 = rho`` (on u = v) and ``rho_2 = sigma^2 rho`` (on G u = s): the scaled
slack and dual are ``sigma s`` and ``sigma nu``, and ``G^T mu`` is unchanged.
The certificate's cone violation uses the unscaled signs (``signed``).
"""
from __future__ import annotations

from ._backend import device_of, is_traced, namespace, pytree


@pytree("X", "D", "_S", "_D", "_gram", "cone_scale")  # cone_scale traced: a new weight does not recompile
class Operators:
    """Holds X (n, d), the 0/1 patterns D (n, P) and the output count C.

    ``X``, ``D`` must be arrays of one backend and one floating dtype;
    ``cone_scale`` > 0 multiplies G (see the module docstring). ``n_pad``: how
    many of the last rows are zero padding (``admmnn.sharding``), left out of
    the row counts of the residual stopping rule.
    """

    def __init__(self, X, D, n_outputs: int, cone_scale: float = 1.0, n_pad: int = 0):
        self.xp = namespace(X, D)
        self.X = X
        self.D = D
        self.n, self.d = X.shape
        self.P = D.shape[1]
        self.C = int(n_outputs)
        # signs 2D-1 broadcast against (n, 2, P, C); masks against (n, P, C)
        self._S = (2 * D - 1)[:, None, :, None]
        self._D = D[:, :, None]
        self._gram = None
        self.cone_scale = float(cone_scale)
        self.n_pad = int(n_pad)

    @property
    def n_groups(self) -> int:
        return 2 * self.P * self.C

    def zeros_u(self):
        """A zero (d, 2PC) variable."""
        return self.xp.zeros((self.d, self.n_groups), dtype=self.X.dtype, device=device_of(self.X, replicated=True))

    def zeros_s(self):
        """A zero (n, 2PC) slack."""
        return self.xp.zeros((self.n, self.n_groups), dtype=self.X.dtype, device=device_of(self.X))

    def halves(self, u):
        """(v, w) halves of ``u``, each (d, PC)."""
        k = self.P * self.C
        return u[:, :k], u[:, k:]

    def F_diff(self, e):
        """``sum_p D_p X e_p`` for e (d, PC): the model output (n, C)."""
        z = self.xp.reshape(self.X @ e, (self.n, self.P, self.C))
        return self.xp.sum(z * self._D, axis=1)

    def F(self, u):
        """F u for u (d, 2PC) -> (n, C)."""
        v, w = self.halves(u)
        return self.F_diff(v - w)

    def FT_half(self, r):
        """``X^T (D_p r_c)`` for r (n, C) -> (d, PC), the positive half of F^T r."""
        xp = self.xp
        m = xp.reshape(self._D * r[:, None, :], (self.n, self.P * self.C))
        return self.X.T @ m

    def FT(self, r):
        """F^T r for r (n, C) -> (d, 2PC)."""
        g = self.FT_half(r)
        return self.xp.concat([g, -g], axis=1)

    def signed(self, s):
        """Multiply an (n, 2PC) array by the signs (2D_p - 1) of its groups."""
        xp = self.xp
        return xp.reshape(xp.reshape(s, (self.n, 2, self.P, self.C)) * self._S, s.shape)

    def _scaled(self, a):
        if isinstance(self.cone_scale, float) and self.cone_scale == 1.0:  # a Python 1, not a traced weight
            return a
        return self.cone_scale * a

    def G(self, u):
        """G u for u (d, 2PC) -> (n, 2PC)."""
        return self._scaled(self.signed(self.X @ u))

    def GT(self, s):
        """G^T s for s (n, 2PC) -> (d, 2PC)."""
        return self._scaled(self.X.T @ self.signed(s))

    def GT_many(self, *ss):
        """G^T applied to several (n, 2PC) arrays in one wider GEMM."""
        xp = self.xp
        out = self._scaled(self.X.T @ xp.concat([self.signed(s) for s in ss], axis=1))
        k = self.n_groups
        return [out[:, i * k:(i + 1) * k] for i in range(len(ss))]

    def gram(self):
        """The block ``sigma^2 X^T X`` (d, d) of ``G^T G``, computed once and cached."""
        if self._gram is None:
            g = self._scaled(self._scaled(self.X.T @ self.X))
            if is_traced(g):  # a value of one JAX trace must not outlive it (compute it before compiling)
                return g
            self._gram = g
        return self._gram

    def with_cone_scale(self, cone_scale: float) -> "Operators":
        """The same operators with G weighted by ``cone_scale``."""
        return Operators(self.X, self.D, self.C, cone_scale, self.n_pad)

    def subset(self, patterns):
        """Operators for the patterns selected by ``patterns`` (a slice or an
        index array): X is shared, D is restricted to those columns. A variable
        of the subset has the same (h, p, c) column layout with P replaced by
        the number of selected patterns."""
        if isinstance(patterns, slice):
            D = self.D[:, patterns]
        else:
            D = self.xp.take(self.D, self.xp.asarray(patterns), axis=1)
        sub = Operators(self.X, D, self.C, self.cone_scale, self.n_pad)
        sub._gram = self._gram
        return sub

    def F_batch(self, U):
        """F applied to each of r vectors: U (d, 2PC, r) -> (n, C, r)."""
        xp = self.xp
        k, r = self.P * self.C, U.shape[-1]
        E = xp.reshape(U[:, :k, :] - U[:, k:, :], (self.d, k * r))
        Z = xp.reshape(self.X @ E, (self.n, self.P, self.C, r))
        return xp.sum(Z * self._D[..., None], axis=1)

    def FT_batch(self, R):
        """F^T applied to each of r residuals: R (n, C, r) -> (d, 2PC, r)."""
        xp = self.xp
        r = R.shape[-1]
        M = xp.reshape(self._D[..., None] * R[:, None, :, :], (self.n, self.P * self.C * r))
        g = xp.reshape(self.X.T @ M, (self.d, self.P * self.C, r))
        return xp.concat([g, -g], axis=1)

    def gram_batch(self, U):
        """(I_{2PC} (x) X^T X) applied to each of r vectors: U (d, 2PC, r) -> (d, 2PC, r)."""
        xp = self.xp
        return xp.reshape(self.gram() @ xp.reshape(U, (self.d, -1)), U.shape)

    def group_norms(self, u):
        """Euclidean norm of each of the 2PC groups of u -> (2PC,)."""
        return self.xp.sqrt(self.xp.sum(u * u, axis=0))
