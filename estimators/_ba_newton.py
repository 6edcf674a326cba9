r"""One active-set Newton (mix-SQP) solver for a convex ``F`` over pmfs ``q``, certified by its objective.

Every Newton solve of the Blahut-Arimoto family goes through it: rate-distortion
at a slope, :math:`F(q) = -\sum_x p(x) \ln (Kq)(x)` (``K = exp(-beta d)``,
row-rescaled), its ``D_min`` end point (a 0/1 kernel), and channel capacity,
``F = -I(p; W)``. The solver sees the program only through an objective
(:mod:`estimators._ba_objectives`): kernel rows of the support with
``z = q @ rows``, ``F`` from ``z``, ``c = -grad F`` (up to a constant), the
Hessian's Gram, the Blahut-Arimoto step, ``F``'s slope along a segment, and the
certificate over every coordinate, which also names the columns to enter.

Each step is sequential quadratic programming [1]_: Newton's model of ``F`` on
the support, minimised over the simplex by primal-dual active-set passes [2]_
(a primal active-set method where those cycle), then an Armijo search along the
segment to the model's minimiser. Columns the certificate finds violated join the
support, at most ``max(enter_min, |support|)`` at a time, most violated first, and
(rate-distortion) take mass together in one step to the minimum of ``F`` towards the
pmf ``~ (c - 1)+``.
Where the model fails (no descent: a badly scaled entering column can round its
step to zero) a Blahut-Arimoto step is taken, or, where the largest
``c`` sits on a zero mass, a step to the minimum of ``F`` towards that vertex,
located from the sign of ``F``'s derivative (it resolves rows of mass ``1e-25``
that move ``F`` below its float resolution; also where that mass is below
``1e-30`` of the largest and the gap crawls). Far from the optimum the
Blahut-Arimoto step is also tried beside Newton's and a crawling step may be
lengthened; late, Newton steps are taken on the block of coordinates still off,
and the gap is also certified by the dual point of a Newton step found by
conjugate gradients preconditioned with the last Hessian factor (second order,
where Blahut's bound is first order).
The solver declines (``None``) where some ``(Kq)(x)`` underflows or the gap
stalls; the caller then starts again elsewhere. The certificate does not depend
on how ``q`` was found.

References
----------
.. [1] Y. Kim, P. Carbonetto, M. Stephens, M. Anitescu, "A fast algorithm for
   maximum likelihood estimation of mixture proportions using sequential
   quadratic programming", J. Comput. Graph. Stat. 29(2), 2020.
.. [2] M. Hintermüller, K. Ito, K. Kunisch, "The primal-dual active set
   strategy as a semismooth Newton method", SIAM J. Optim. 13(3), 2002.
.. [3] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, Algorithm 16.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


#: How close the mixture step comes to its segment's minimum (relative in the step length): the Newton steps of
#: six benchmark curves (512 and 1024, 1e-6 and 1e-10) within one of those at 1e-3, at 4-9 products a search.
MIXTURE_REL = 0.05


@dataclass(frozen=True)
class NewtonOptions:
    """Knobs of the Newton solvers of the Blahut-Arimoto family; the defaults are what the stress tests certify with.

    Attributes
    ----------
    qp_passes : int
        Primal-dual active-set passes per quadratic model.
    active_set_max : int
        Where the passes cycle, the primal active-set method takes over up to this support size; above it
        (one factorisation per coordinate fixed: 69 s of a 70 s capacity at 2048 x 2048), the last pass,
        clipped to the simplex, is the step's target (the line search and the Blahut-Arimoto step guard it).
    schur_fraction : int
        A pass refactors the free block once more than ``1/schur_fraction`` of the coordinates are fixed
        (one pass on one thread at 525 coordinates: through the whole factor 0.18 ms with 4 fixed, 0.75 ms
        with 80, 1.24 ms with 130; a new factor of the free block 2.2-1.1 ms; they meet near 130 fixed, and
        near 80 at 300; 8 before: curves 0.98x-0.99x).
    ridge : float
        Each diagonal entry of the Hessian grows by this fraction of itself (plus ``1e-300``): relative to
        each entry, as the diagonal can span 20 decades (a mass of ``1e-19`` serving a row alone).
    ba_gap : float
        Above this certified gap (nats) each step also tries the Blahut-Arimoto step.
    lead_steps, lead_gap : int, float
        Above ``lead_gap`` each full Newton step is led by this many Blahut-Arimoto steps, each of which
        lowers ``F``: a small mass short by a factor ``c`` is put right in one of them, where Newton's model
        of ``-ln`` only doubles it (20-slope curves, medians of 11: 1024 x 1024, 75 Newton steps to 70 and
        0.50 s to 0.47 s; 256 x 256, 80 to 68 and 69 ms to 61 ms).
    crawl, crawl_gap_min : float
        Steps that shrink the gap by less than the factor ``crawl``, while it is above ``crawl_gap_min``,
        are crawling: the next step may be lengthened. Below, ``F``'s slope along a step is rounding noise.
    stall_steps, end_point_stall_steps : int
        A start whose gap has not halved in this many steps is abandoned (seen where rows of mass ``1e-50``
        are served ``1e-80`` and the support's Hessian spans 100 decades); at the ``D_min`` end point
        (masses of ``1e-15`` serving rows alone, ~80 steps) the second.
    enter_min : int
        Columns allowed to join the support in one step: the ``max(enter_min, |support|)`` largest ``c``.
    vertex_arg_max : float
        A first slope starts from the best single column when ``beta`` times its largest distortion excess
        stays below this (every ``(Kq)(x) >= e^-10``), else from up to ``start_steps`` plain steps, the
        columns above ``end_point_cutoff`` of the largest mass or not falling kept (1024 x 1024, beta 100:
        0.1 s against 5.7 s from the uniform pmf; at beta 20, 75 ms against 158 ms from the vertex).
    gram32_gap, gram32_crawl : float
        Above this gap the Hessian's Gram is formed in float32 (Newton converges as fast there), unless the
        step is the second crawling one in a row or the last shrank the gap by less than the factor
        ``gram32_crawl`` with no column entering (hard problems, ``hard_rd_problem``: with float32 at every
        crawling step 353 of the stress run's 3600 fail, stalled; at 0.75 without the second rule 2; a
        1024 x 1024 curve's float64 Grams 14.2 ms to 2.0 ms with the entering exception, same steps). A
        20-slope curve at 1024 x 1024 crawls once a slope late on, at ratios 0.32-0.7, and the float32
        Gram there took 0.86x, 0.91x and 0.97x of its time in three runs (same Newton steps; every
        crawling step was in float64 before).
    chord_ratio, chord_cg_steps, chord_decrement : float, int, float
        Where ``gap^2 <= chord_ratio tol`` and half the Newton decrement (through the last factor) is at
        most ``chord_decrement tol``, the gap is also certified by the dual point of a Newton step
        (the objective's ``chord_certificate``; second order, where Blahut's ``ln max c`` is first order),
        the step found by this many conjugate-gradient steps on ``H delta = c - 1``, preconditioned by the
        last Newton step's Hessian factor; ``chord_ratio = 0``: never. Late in a slope Blahut's bound is
        far above the true gap (1024 x 1024, beta 1000: ``1.2e-3`` against ``1.7e-9``), and a full Newton
        step was spent on the certificate alone; the certified point is then moved by that Newton step
        (see ``_polished``). Newton steps of a 20-slope curve at 1024 x 1024 (1e-6) and 50-slope curves at
        512 x 512 (1e-6, 1e-10): 70, 147, 178 to 50, 97, 137 (six CG steps: 49, 93, 136, three: 51, 107,
        138; each CG step two products with the support's rows and a solve with the factor: four were
        the fastest here).
    chord_cg_more : int
        Where the chord certificate fails on the support itself while half the decrement found so far is at
        most ``tol`` (the direction's accuracy, not the point's, may be short), this many more CG steps and
        the certificate again: at 1024 x 1024, beta 1000, the on-support gap through 4, 8 and 16 steps was
        ``1.8e-4``, ``2.1e-6`` and ``2.5e-7`` (the true gap ``2.55e-7``). Newton steps of 20-slope curves
        (1e-6) at 1024, 512 (50 slopes), 256 and nine at 200-400: 45, 90, 42 and 1-4 each fewer with 8
        (43, 85, 39; 6, 12 and 20 gave the same).
    block_gap, block_fraction : float, int
        Below ``block_gap`` a step may be taken on the coordinates with ``|ln c| > max(tol, gap^2) / 4``
        alone, when they are at most ``1/block_fraction`` of the support.
    z_floor, end_point_z_floor : float
        Rows whose ``(Kq)(x)`` fall below this make the solver decline; at the ``D_min`` end point none
        (its kernel is at least ``e^-708`` everywhere, so no row reaches 0, and rows of mass ``1e-27``
        served ``1e-300`` while a step drops their columns are revived through their ``c``).
    kernel_arg_min : float
        Smallest exponent of the float64 kernel: ``exp(-650) = 5e-283``, so that its products with masses
        and weights above ``1e-25`` are normal numbers (``q @ ks`` at beta 1000, 480 x 1024: 1.8 ms on
        subnormal products at ``exp(-708)``, 0.16 ms here); ``5e-33`` of any row sum the solver accepts.

    mixture_step : bool
        Where columns enter, first a step to the minimum of ``F`` towards the pmf ``~ (c - 1)+`` (see
        :func:`_mixture_step`; rate-distortion objectives only). Newton steps of a 20-slope curve at
        1024 x 1024 (1e-6), 50-slope curves at 512 x 512 (1e-6, 1e-10) and a 20-slope one at 256 x 256
        (1e-6): 52, 97, 137, 50 without, 45, 86, 116, 42 with (on the entering columns alone 46, 92, 131, 44).

    start_steps, end_point_warmup : int
        Plain steps that pick a first slope's support (see ``vertex_arg_max``) and that of the ``D_min`` end
        point on its 0/1 kernel ... (and capacity's: its inputs not falling, see
        :func:`estimators.blahut_arimoto._capacity_start`)
    end_point_cutoff : float
        ... the columns whose mass is at least this fraction of the largest (or not falling).
    """

    qp_passes: int = 8
    active_set_max: int = 256
    schur_fraction: int = 4
    ridge: float = 1e-13
    ba_gap: float = 1.0
    lead_steps: int = 3
    lead_gap: float = 0.05
    crawl: float = 0.3
    crawl_gap_min: float = 1e-6
    stall_steps: int = 30
    enter_min: int = 32
    vertex_arg_max: float = 10.0
    gram32_gap: float = 1e-4
    gram32_crawl: float = 0.75
    chord_ratio: float = 1e4
    chord_cg_steps: int = 4
    chord_cg_more: int = 8
    chord_decrement: float = 4.0
    block_gap: float = 0.3
    block_fraction: int = 2
    z_floor: float = 1e-250
    end_point_z_floor: float = 0.0
    end_point_stall_steps: int = 100
    kernel_arg_min: float = -650.0
    end_point_warmup: int = 60
    end_point_cutoff: float = 1e-2
    start_steps: int = 20
    mixture_step: bool = True


@dataclass(frozen=True)
class Solution:
    """What :func:`solve` found: support ``idx``, masses ``q`` and the quantities at ``q`` (backend arrays)."""

    idx: Any
    q: Any
    ks: Any  # kernel rows of the support, (s, n)
    z: Any  # Kq, (n,)
    c: Any  # c on the support
    gap: float  # ln max c over every column (bounded above off the support)
    iterations: int
    screen: Any  # the objective's screen state after the solve


def solve(obj, idx, q, *, tol: float, max_iter: int, options: NewtonOptions) -> Solution | None:
    """Minimise ``obj``'s ``F`` from the support ``idx`` with masses ``q``; ``None`` on underflow or a stall."""
    xp, opt = obj.xp, options
    buf = xp.empty(idx.shape[0] + _spare(idx.shape[0], obj.columns, opt), obj.row_width)
    ks = obj.rows(idx, out=buf[: idx.shape[0]])
    screen = obj.screen
    it, last_gap, best_gap, best_at, last_block, crawls = 0, math.inf, math.inf, 0, False, 0
    pre = None  # the last Newton step's Hessian factor, as a preconditioner
    while True:
        z = q @ ks
        if not bool((z > opt.z_floor).all()):
            return None
        c = obj.ascent(ks, z)
        if not math.isfinite(float(xp.sum(c))):
            return None
        gap, entering, screen = obj.certificate(screen, idx, q, z, c, tol, max(opt.enter_min, idx.shape[0]))
        certified = gap
        if obj.block and pre is not None and tol < gap and gap * gap <= opt.chord_ratio * tol:
            cg = _NewtonCG(obj, ks, z, c, pre)
            if not cg.futile(opt.chord_decrement * tol):
                delta = cg.run(opt.chord_cg_steps)
                chord, screen = obj.chord_certificate(screen, idx, ks, z, delta, tol)
                if chord == math.inf and cg.found() <= tol:  # failed on the support: maybe the direction's accuracy
                    delta = cg.run(opt.chord_cg_more)
                    chord, screen = obj.chord_certificate(screen, idx, ks, z, delta, tol)
                certified = min(gap, chord)
                if chord <= tol:
                    return _polished(obj, idx, q, ks, z, c, delta, chord, tol, it, screen, opt.z_floor)
        if certified <= tol or it >= max_iter:
            return Solution(idx, q, ks, z, c, certified, it, screen)
        if gap < 0.5 * best_gap:
            best_gap, best_at = gap, it
        elif it - best_at >= opt.stall_steps:
            return None
        if entering is not None:
            new, k_new, c_new = entering
            idx, (buf, ks) = xp.concat([idx, new]), _grown(xp, buf, ks.shape[0], k_new, obj.columns, opt)
            q, c = xp.concat([q, xp.zeros(new.shape[0])]), xp.concat([c, c_new])
            pre = None  # (a preconditioner blind to the entering columns gained no step)
            if obj.block and opt.mixture_step:
                q, z, c = _mixture_step(obj, ks, z, c, q, opt.z_floor)
        crawling = it > 0 and gap > max(opt.crawl * last_gap, opt.crawl_gap_min)
        crawls = crawls + 1 if crawling else 0
        step = None  # a block step, unless the last one did not shrink the gap (below crawl_gap_min too)
        if obj.block and not crawling and gap <= opt.block_gap and not (last_block and gap > opt.crawl * last_gap):
            step = _block_step(obj, ks, z, c, q, 0.25 * max(tol, gap * gap), opt)
        last_block = step is not None
        if step is None:
            if gap > opt.lead_gap:
                q, z, c = _lead(obj, ks, z, c, q, opt)
            # (a gap held up by columns just entered is no sign of a float32 model's limit)
            shrank = entering is not None or gap <= max(opt.gram32_crawl * last_gap, opt.crawl_gap_min)
            stuck = crawls >= 2 or (it > 0 and not shrank)
            step, factor = _step(obj, ks, z, c, q, gap, crawling, opt, single=gap > opt.gram32_gap and not stuck)
            pre = None if factor is None else _Preconditioner(factor, xp.index(np.arange(q.shape[0])))
        q, keep = step
        last_gap = gap
        if keep is not None:
            order, ks = _shrunk(xp, buf, keep)
            idx, q = idx[order], q[order]
            pre = None if pre is None else pre.kept(order)
        it += 1


def _spare(s: int, m: int, opt: NewtonOptions) -> int:
    """Rows of room past a support of ``s`` of the ``m`` columns: at most ``max(enter_min, s)`` enter a step,
    and at 1024 x 1024 at most ``s / 4`` did."""
    return min(max(opt.enter_min, s // 2), m - s)


def _grown(xp, buf, s: int, new_rows, m: int, opt: NewtonOptions):
    """``(buffer, rows)``: the first ``s`` rows of ``buf`` followed by ``new_rows``, written in place where
    they fit, else in a new buffer with room to spare (a concatenation copied every row each time columns
    entered: 0.47 ms a step at 1024 x 1024, 5% of a curve)."""
    total = s + new_rows.shape[0]
    if total > buf.shape[0]:
        grown = xp.empty(total + _spare(total, m, opt), buf.shape[1])
        grown[:s] = buf[:s]
        buf = grown
    buf[s:total] = new_rows
    return buf, buf[:total]


def _shrunk(xp, buf, keep):
    """``(order, rows)``: the rows ``keep`` (increasing) of ``buf`` moved to its first ``len(keep)``: those
    already there stay, and the rows kept past that end fill the holes (a few rows move, not all);
    ``order[i]`` is the old position of the new ``i``-th row."""
    k = keep.shape[0]
    order = xp.arange(k)
    tail = keep[keep >= k]
    if tail.shape[0]:
        holes = xp.nonzero(~xp.mask(k, keep[keep < k]))
        buf[holes] = buf[tail]
        order[holes] = tail
    return order, buf[:k]


def _polished(obj, idx, q, ks, z, c, delta, chord: float, tol: float, it: int, screen, z_floor: float) -> Solution:
    """The solution at ``q + delta`` (clipped, normalised), where the chord certificate through ``delta`` holds
    there too, else at ``q``.

    The chord gap bounds ``F(q) - min F`` through a lower bound ``L`` on ``min F``; at any ``q'`` the gap is
    ``F(q') - L``. ``delta`` is (nearly) the Newton step, so ``q + delta`` is about where the next Newton
    step would go: where the certificate stops a slope a step before Blahut's would, the point still has
    the accuracy of that step, in the encoder's rate and distortion (first order in ``q``) as well as in
    the Lagrangian (second order). Bernoulli source, Hamming distortion, beta 3, 1e-12: the rate off
    its closed form by ``1.0e-8`` at ``q``, within ``1e-9`` at ``q + delta``.
    """
    xp = obj.xp
    q_new = q + delta
    q_new = xp.where(q_new > 0, q_new, 0.0)
    q_new = q_new / xp.sum(q_new)
    z_new = q_new @ ks
    gap_new = chord + (obj.value(z_new) - obj.value(z))
    if not (bool((z_new > z_floor).all()) and gap_new <= tol):
        return Solution(idx, q, ks, z, c, chord, it, screen)
    q_new, keep = _kept(xp, q_new)
    if keep is not None:
        idx, q_new, ks = idx[keep], q_new[keep], ks[keep]
    return Solution(idx, q_new, ks, z_new, obj.ascent(ks, z_new), max(gap_new, 0.0), it, screen)


@dataclass(frozen=True)
class _Preconditioner:
    """The Cholesky factor of an earlier Newton step's Hessian, as a preconditioner of the Hessian at a later
    point of the same support, or of one that has lost columns since: ``at[i]`` is the factor's coordinate of
    the support's ``i``-th. Of a smaller support it is the inverse's principal block, still positive
    definite (20-slope curve at 1024 x 1024 and 50-slope curves at 512 x 512, 1e-6 and 1e-10: 50, 97 and
    137 Newton steps, against 62, 130 and 141 with the factor dropped with the columns).
    """

    factor: Any
    at: Any

    def kept(self, keep) -> _Preconditioner:
        return _Preconditioner(self.factor, self.at[keep])

    def __call__(self, xp, r):
        """``P r``."""
        if self.at.shape[0] == self.factor.shape[0]:
            return xp.cholesky_apply(self.factor, r[:, None])[:, 0]
        padded = xp.zeros(self.factor.shape[0])
        padded[self.at] = r
        return xp.cholesky_apply(self.factor, padded[:, None])[self.at, 0]


def _newton_direction(obj, ks, z, c, pre: _Preconditioner, steps: int, futile: float):
    """``delta`` with ``H delta ~ c - 1`` (a Newton step for ``F + sum q``, unconstrained) at the current point:
    ``steps`` preconditioned conjugate-gradient steps from 0 (:class:`_NewtonCG`), or ``None`` where half the
    Newton decrement through the preconditioner exceeds ``futile`` (see :meth:`_NewtonCG.futile`)."""
    cg = _NewtonCG(obj, ks, z, c, pre)
    return None if cg.futile(futile) else cg.run(steps)


class _NewtonCG:
    """Preconditioned conjugate gradients on ``H delta = c - 1`` from ``delta = 0``, resumable: each step two
    products with ``ks`` and one solve with the preconditioner; they stop where the curvature met is not
    positive and finite (any ``delta`` serves the chord certificate)."""

    def __init__(self, obj, ks, z, c, pre: _Preconditioner):
        self.obj, self.ks, self.z, self.pre = obj, ks, z, pre
        xp = obj.xp
        self.r0 = c - 1.0
        # a Hessian scaled beyond float range (masses of 1e-19 serving rows alone) overflows: the steps stop
        with np.errstate(over="ignore", invalid="ignore"):
            self.r, y = self.r0, pre(xp, self.r0)
            self.delta, self.direction, self.ry = xp.zeros(self.r0.shape[0]), y, float(xp.sum(self.r0 * y))
        self.stopped = False

    def futile(self, bound: float) -> bool:
        """Whether half the Newton decrement through the preconditioner, ``(c - 1)' P (c - 1) / 2``, an estimate
        of ``F - min F``, exceeds ``bound``: no certificate can be below the true gap. (Curves at 512 and
        1024: every certified attempt had at most ``0.9 tol``, most of the others more than ``2 tol``.)"""
        return not 0.5 * self.ry <= bound

    def found(self) -> float:
        """``(c - 1)' delta / 2``: half the Newton decrement found so far, which grows towards it (in exact
        arithmetic) with every step; about ``F - min F`` near the optimum."""
        return 0.5 * float(self.obj.xp.sum(self.r0 * self.delta))

    def run(self, steps: int):
        """``delta`` after up to ``steps`` more steps."""
        xp, obj = self.obj.xp, self.obj
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                if self.stopped:
                    break
                h_dir = obj.hessian_product(self.ks, self.z, self.direction)
                curvature = float(xp.sum(self.direction * h_dir))
                if not (0 < curvature < math.inf and 0 < self.ry < math.inf):
                    self.stopped = True
                    break
                alpha = self.ry / curvature
                self.delta = self.delta + alpha * self.direction
                self.r = self.r - alpha * h_dir
                y = self.pre(xp, self.r)
                ry_next = float(xp.sum(self.r * y))
                self.direction, self.ry = y + (ry_next / self.ry) * self.direction, ry_next
        return self.delta


def _mixture_step(obj, ks, z, c, q, z_floor: float):
    """``(q, z, c)`` moved to the minimum of ``F`` on the segment towards the pmf ``a ~ (c - 1)+``, else (no
    ``c`` above 1, a minimum within ``1e-12`` of the start, whose masses would only slow the products
    with the kernel, or a row's ``(Kq)(x)`` there at most ``z_floor``) as they were.

    ``c > 1`` marks the coordinates whose mass is short (``c = 1`` at the optimum on the support); the
    columns that have just entered are among them at zero mass, where neither the Blahut-Arimoto step
    (``q c``) nor, much, Newton's model of ``-ln`` moves them. One segment (one product with the
    support's rows, Newton's method on ``F``'s derivative along it) gives them mass together.
    """
    xp = obj.xp
    a = xp.maximum(c - 1.0, 0.0)
    total = float(xp.sum(a))
    if not 0 < total < math.inf:
        return q, z, c
    a = a / total
    col = a @ ks
    t = obj.line_minimum(z, col, rel=MIXTURE_REL)
    if not t > 1e-12:
        return q, z, c
    z_t = (1.0 - t) * z + t * col
    if not bool((z_t > z_floor).all()):
        return q, z, c
    return (1.0 - t) * q + t * a, z_t, obj.ascent(ks, z_t)


def _lead(obj, ks, z, c, q, opt: NewtonOptions):
    """Up to ``lead_steps`` Blahut-Arimoto steps from ``q`` (each lowers ``F``): ``(q, z, c)``."""
    for _ in range(opt.lead_steps):
        q_ba = obj.ba_step(q, c)
        z_ba = q_ba @ ks
        if not bool((z_ba > opt.z_floor).all()):
            break
        q, z = q_ba, z_ba
        c = obj.ascent(ks, z)
    return q, z, c


def _step(obj, ks, z, c, q, gap: float, crawling: bool, opt: NewtonOptions, single: bool):
    """One safeguarded SQP step: ``((q, indices to keep or None: all), factor of its Hessian or None)``.

    Far from the optimum (``gap > ba_gap``) the Blahut-Arimoto step ``q c`` is
    tried as well and the lower ``F`` kept: where some ``(Kq)(x)`` is orders of
    magnitude too small, Newton's model of ``-ln`` only doubles it per step,
    while ``q c`` scales the masses serving it by their ``c``. ``single``: the Gram in float32, formed
    again in float64 where it has no Cholesky factor (near-parallel kernel columns, 1-D ``|a - b|``
    distortions at 512 x 512: two Blahut-Arimoto steps lost to it).
    """
    h = obj.hessian(ks, z, single=single)
    x, factor = _model_minimiser(obj.xp, h, c, q, opt)
    if factor is None and single:  # float32 rounding can leave near-parallel columns' Gram without a factor
        x, factor = _model_minimiser(obj.xp, obj.hessian(ks, z, single=False), c, q, opt)
    return _safeguarded(obj, ks, z, c, q, gap, crawling, opt, x), factor


def _safeguarded(obj, ks, z, c, q, gap: float, crawling: bool, opt: NewtonOptions, x):
    """The step of :func:`_step` towards the model's minimiser ``x`` (``None``: no model)."""
    xp = obj.xp
    top = xp.argmax(c)
    if float(q[top]) == 0 and (x is None or float(x[top]) == 0):
        return _vertex_step(obj, ks, q, top)
    delta = None if x is None else x - q
    slope = math.inf if delta is None else -float(xp.sum(c * delta))
    if not slope < 0:
        if float(q[top]) > 0:  # the Blahut-Arimoto step, a descent direction
            delta = obj.ba_step(q, c) - q
        else:  # towards the vertex of the largest c (Frank-Wolfe): revives a zero mass
            delta = -q
            delta[top] += 1.0
        slope = -float(xp.sum(c * delta))
    f = obj.value(z)
    t, q_t, z_t, _, _ = _armijo(obj, ks, q, delta, f, slope, mass=False, t_min=1e-12, z_floor=opt.z_floor)
    if crawling and t == 1.0:
        t = _extend(obj, ks, q, delta, z_t, slope, opt.z_floor)
        if t > 1.0:
            q_t = q + t * delta
            q_t = xp.where(q_t > 0, q_t, 0.0)
            z_t = q_t @ ks
    total = float(xp.sum(q_t))
    q_t = q_t / total
    if gap > opt.ba_gap:
        q_ba = obj.ba_step(q, c)
        z_ba = q_ba @ ks
        # only when clearly lower: it keeps entering columns at zero, and a tie would cycle them
        f_ba = obj.value(z_ba)
        if f_ba < obj.value(z_t / total) - 1e-12 * (1.0 + abs(f)) and bool((z_ba > opt.z_floor).all()):
            q_t = q_ba
        if crawling:  # a mass orders of magnitude short may serve rows below F's resolution
            return _vertex_step(obj, ks, q_t, top)
    elif crawling and float(q_t[top]) <= 1e-30 * float(xp.amax(q_t)):  # F's slope there is below its rounding
        return _vertex_step(obj, ks, q_t, top)
    return _dropped(obj, ks, q, c, q_t)


def _dropped(obj, ks, q, c, q_t):
    """``_kept(q_t)``, unless a coordinate the step emptied is violated by more than a nat there: then the
    vertex step towards it from ``q_t``.

    Newton's model of a log-like coordinate (a column serving alone a row of mass ``1e-22``, whose optimal
    mass is ``1e-18``) overshoots past zero from above; the certificate then asks for it back at once, and
    the next step from above drops it again. The vertex step approaches its optimum from below.
    """
    xp = obj.xp
    gone = xp.nonzero((q_t <= 0) & (q > 0))
    if gone.shape[0]:
        c_gone = obj.ascent(ks[gone], q_t @ ks)
        j = xp.argmax(c_gone)
        if obj.excess(q, c, float(c_gone[j])) > 1.0:
            return _vertex_step(obj, ks, q_t, int(gone[j]))
    return _kept(xp, q_t)


def _block_step(obj, ks, z, c, q, threshold: float, opt: NewtonOptions):
    """A Newton step on the few coordinates whose ``c`` is off, or ``None`` where none is cheap.

    Late in a slope the gap sits on a few coordinates ``A``. Newton's model of
    ``G(q) = F(q) + sum q`` (minimised over ``q >= 0`` at the same pmf, as
    ``F(tq) = F(q) - ln t``) over ``A`` alone costs ``n |A|^2`` instead of
    ``n s^2``; the block's mass may change, so a short mass can grow from
    donors outside it; the result is renormalised (which lowers ``G``).
    """
    xp = obj.xp
    s = q.shape[0]
    log_c = xp.log(c)
    block = xp.nonzero((log_c > threshold) | (log_c < -threshold))
    if block.shape[0] == 0 or block.shape[0] * opt.block_fraction > s:
        return None
    qb, g = q[block], c[block] - 1.0
    h = obj.hessian(ks[block], z, single=False)
    if h is None:
        return None
    xp.add_to_diagonal_(h, opt.ridge * xp.diagonal(h) + 1e-300)
    x = _bound_qp(xp, h, g + xp.symv(h, qb), opt.qp_passes)
    if x is None:
        return None
    delta = xp.zeros(s)
    delta[block] = x - qb
    slope = -float(xp.sum(g * (x - qb)))
    if not slope < 0:
        return None
    f = obj.value(z) + 1.0
    _, q_t, _, _, accepted = _armijo(obj, ks, q, delta, f, slope, mass=True, t_min=1e-6, z_floor=opt.z_floor)
    return _kept(xp, q_t / xp.sum(q_t)) if accepted else None


def _armijo(obj, ks, q, delta, f: float, slope: float, *, mass: bool, t_min: float, z_floor: float):
    """Backtracking from ``t = 1`` along ``delta``: ``(t, q_t, z_t, f_t, accepted)``.

    ``f_t`` is ``F(q_t)``, plus ``sum q_t`` where ``mass`` (the ``G`` of
    :func:`_block_step`); accepted where it falls by Armijo's amount and no row
    underflows. The rounding allowance lets quadratic convergence finish below
    the float resolution of ``F``. Below ``t_min`` the last point tried is
    returned, not accepted.
    """
    xp = obj.xp
    t = 1.0
    while True:
        q_t = q + t * delta
        q_t = xp.where(q_t > 0, q_t, 0.0)
        z_t = q_t @ ks
        f_t = obj.value(z_t) + (float(xp.sum(q_t)) if mass else 0.0)
        if f_t <= f + 1e-4 * t * slope + 8e-16 * (1.0 + abs(f)) and bool((z_t > z_floor).all()):
            return t, q_t, z_t, f_t, True
        if t < t_min:
            return t, q_t, z_t, f_t, False
        t *= 0.5


def _kept(xp, q):
    """``q`` and the indices of its positive entries (``None``: all are)."""
    live = q > 0
    return q, (None if bool(live.all()) else xp.nonzero(live))


def _vertex_step(obj, ks, q, j: int):
    """``q -> (1 - t) q + t e_j``, ``t`` minimising ``F`` on that segment, ``j`` of the largest ``c``.

    For a mass that Newton's model leaves at zero or grows only a few times per
    step while ``c`` is far above 1: rows of mass ``1e-25`` served ``1e-53``
    give it a ``c`` of ``1e37`` but move ``F`` below its float resolution.
    ``t`` comes from the sign of ``F``'s derivative along the segment
    (``obj.segment_slope``), which sees them.
    """
    xp = obj.xp
    t = segment_minimum(obj.segment_slope(xp.to_numpy(q @ ks), xp.to_numpy(ks[j])))
    q_t = (1.0 - t) * q
    q_t[j] += t
    return _kept(xp, q_t)


def segment_minimum(slope) -> float:
    """The minimiser on ``[0, 1]`` of a convex function whose derivative is ``slope(t)``.

    Bisection on the sign of ``slope``, geometric while the bracket spans
    orders of magnitude. ``1`` where the function falls all the way,
    ``1e-300`` where it does not fall.
    """
    if slope(1.0 - 1e-15) <= 0.0:  # the column serves every row: all mass there
        return 1.0
    lo, hi = 1e-300, 1.0
    if slope(lo) >= 0.0:
        return lo
    for _ in range(80):
        mid = math.sqrt(lo * hi) if hi > 4.0 * lo else 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(mid) < 0.0 else (lo, mid)
        if hi - lo <= 1e-3 * lo:
            break
    return lo


def _extend(obj, ks, q, delta, z_1, slope: float, z_floor: float) -> float:
    """The step length past ``1`` along ``delta`` while ``F`` keeps falling steeply, else ``1``.

    Newton's model of ``-ln`` only doubles a mass that is orders of magnitude
    short, and ``F`` may change too little to compare in floating point; its
    derivative along ``delta`` does not. Where at ``t = 1`` it is still below a
    quarter of its value at 0, the step doubles while the segment stays in the
    simplex and the derivative stays negative (``F`` convex).
    """
    xp = obj.xp

    def derivative(z_t) -> float:
        return -float(xp.sum(obj.ascent(ks, z_t) * delta))

    if not derivative(z_1) < 0.25 * slope:
        return 1.0
    t = 1.0
    while t < 2.0**60:
        q_t = q + 2.0 * t * delta
        if not bool((q_t >= 0).all()):
            break
        z_t = q_t @ ks
        if not (bool((z_t > z_floor).all()) and derivative(z_t) < 0):
            break
        t *= 2.0
    return t


# --------------------------------------------------------------------------
# the quadratic model over the simplex


def _model_minimiser(xp, h, c, q, opt: NewtonOptions):
    r"""Minimiser over the simplex of Newton's model :math:`\tfrac12 (x-q)^\top H (x-q) - c^\top (x-q)`.

    KKT: :math:`Hx = r - \nu 1 + \mu`, ``r = c + Hq``, ``sum x = 1``,
    ``x, mu >= 0``, ``mu x = 0``. Each primal-dual pass fixes a set ``B`` at
    zero and solves for the rest through one Cholesky factor of ``H``: with
    ``Y = H^{-1} [r, 1, e_B]``, the ``|B| + 1`` conditions ``x_B = 0``,
    ``sum x = 1`` fix ``(nu, mu_B)``. Returned with the factor: ``(x or None where the model
    fails, factor or None where H has none)``.
    """
    if h is None:  # weights p/z^2 beyond float range: no usable model
        return None, None
    xp.add_to_diagonal_(h, opt.ridge * xp.diagonal(h) + 1e-300)
    factor = xp.cholesky(h)
    if factor is None:
        return None, None
    r = c + xp.symv(h, q)
    s = q.shape[0]
    # H^-1 r as q + H^-1 c: the step to the accuracy of the solve relative to itself, not to q (near the
    # optimum it is orders of magnitude below q, and H^-1 r rounded it to cond(H) units of q's last bit)
    base = xp.cholesky_apply(factor, xp.stack([c, xp.full(s, 1.0)], axis=1))
    base[:, 0] += q
    fixed = xp.index(np.zeros(0, dtype=np.int64))
    half = _HalfInverse(xp, factor, s)
    # a model scaled beyond float range overflows somewhere in the passes: declined below, not warned
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(opt.qp_passes):
            x, mu = _pass(xp, h, r, half, base, fixed, opt.schur_fraction)
            if x is None:
                return None, factor
            # keep fixed where the multiplier is >= 0, fix the free coordinates that went negative
            now_fixed = xp.nonzero((xp.mask(s, fixed) & ~xp.mask(s, fixed[mu < 0])) | (x < 0))
            if now_fixed.shape[0] == fixed.shape[0] and bool((now_fixed == fixed).all()):
                break
            if now_fixed.shape[0] >= s:
                break
            fixed = now_fixed
        else:  # the passes cycle (an ill-conditioned model): the primal active-set method cannot; on a
            # large support, where it fixes one coordinate per factorisation, the last pass clipped instead,
            # unless that is no descent direction: then the primal method from it (a few coordinates off)
            if s <= opt.active_set_max:
                x = _primal_active_set(xp, h, r, half, base, q, opt.schur_fraction)
            else:
                clipped = _clipped(xp, x)
                if clipped is None or float(xp.sum(c * (clipped - q))) > 0:  # (a descent direction: -c'delta < 0)
                    return clipped, factor
                x = _primal_active_set(xp, h, r, half, base, clipped, opt.schur_fraction)
            if x is None:
                return None, factor
    return _clipped(xp, x), factor


def _clipped(xp, x):
    """``x`` with its negative entries set to 0, normalised; ``None`` where that is no pmf."""
    total = float(xp.sum(xp.where(x > 0, x, 0.0)))
    if not (math.isfinite(float(xp.sum(x))) and 0 < total < math.inf):
        return None
    return xp.where(x > 0, x, 0.0) / total


def _primal_active_set(xp, h, r, half: _HalfInverse, base, q, schur_fraction: int):
    """The model's minimiser by the primal active-set method [3]_ from the feasible ``q``, or ``None``.

    One coordinate fixed per blocked step, the one of most negative multiplier
    freed per unblocked one: the model decreases at every step and no working
    set repeats (slower than the primal-dual passes, but no cycling) in exact
    arithmetic. On a nearly singular ``H`` a coordinate freed on a negative
    multiplier can block the very next step at length 0 (its pass rounded the
    wrong way) and be fixed again, over and over: such a coordinate is not
    freed again until a step of positive length is taken, and where only such
    coordinates have negative multipliers, ``x`` is returned (200 x 800, d
    uniform, 12 slopes 0.3-1e4: 61 of 83 calls ran into the ``4s + 8`` limit).
    """
    s = q.shape[0]
    x, fixed = q, xp.nonzero(q <= 0)
    freed, bounced = None, xp.mask(s, fixed[:0])  # the coordinate just freed; those that blocked at length 0
    for _ in range(4 * s + 8):
        y, mu = _pass(xp, h, r, half, base, fixed, schur_fraction)
        if y is None:
            return None
        step = y - x
        down = ~xp.mask(s, fixed) & (step < 0) & (y < 0)
        if not bool(down.any()):  # y is feasible: optimal unless a multiplier says release
            x = y
            if mu.shape[0] == 0:
                return x
            pull = xp.where(bounced[fixed], 0.0, -mu)
            if float(xp.amax(pull)) <= 0:
                return x
            release = xp.argmax(pull)
            freed = int(fixed[release])
            fixed = xp.concat([fixed[:release], fixed[release + 1:]])
            continue
        # the largest step keeping x >= 0; the coordinate that blocks it joins the fixed set
        ratios = xp.where(down, -x / xp.where(down, step, -1.0), math.inf)
        block = xp.argmax(-ratios)
        length = float(ratios[block])
        if length > 0:
            bounced = xp.mask(s, fixed[:0])
        elif int(block) == freed:
            bounced[block] = True
        freed = None
        x = x + length * step
        x[block] = 0.0
        fixed = xp.nonzero(xp.mask(s, fixed) | xp.mask(s, xp.index(np.array([block]))))
    return None


class _HalfInverse:
    """Columns ``U'^-1 e_k`` for the Cholesky factor ``U`` of ``H = U' U``, each solved once per model: its
    passes fix mostly the same coordinates (a first step at 1024 x 1024, 525 coordinates: 68, then 54, then
    54 again with a few changed), and the primal active-set method changes one a step."""

    def __init__(self, xp, factor, s: int):
        self.xp, self.factor = xp, factor
        self.at = np.full(s, -1)  # row of each coordinate's column in `rows`
        self.rows, self.count = None, 0

    def __call__(self, fixed):
        """``W`` (s, |fixed|) with ``W' W = E' H^-1 E`` for ``E = I[:, fixed]``."""
        xp = self.xp
        f = xp.index_numpy(fixed)
        if not f.shape[0]:
            return xp.zeros(self.at.shape[0], 0)
        missing = f[self.at[f] < 0]
        if missing.shape[0]:
            s, k = self.at.shape[0], missing.shape[0]
            if self.rows is None or self.count + k > self.rows.shape[0]:
                grown = xp.empty(min(s, max(2 * (self.count + k), 64)), s)
                if self.rows is not None:
                    grown[: self.count] = self.rows[: self.count]
                self.rows = grown
            unit = xp.zeros(s, k)
            unit[xp.index(missing), xp.arange(k)] = 1.0
            # one triangular solve with U' for all of them, not two
            self.rows[self.count:self.count + k] = xp.cholesky_half_apply(self.factor, unit).T
            self.at[missing] = self.count + np.arange(k)
            self.count += k
        return self.rows[xp.index(self.at[f])].T


def _pass(xp, h, r, half: _HalfInverse, base, fixed, schur_fraction: int):
    """One active-set pass: ``x`` with ``x[fixed] = 0`` and ``sum x = 1``, and the multipliers of ``fixed``.

    Few fixed coordinates: through the factor ``U`` of the whole ``H`` (``W' W = (H^-1)_BB``
    from :class:`_HalfInverse`, a ``|B| + 1`` system and ``H^-1 E_B mu = U^-1 W mu``: at 525
    coordinates with 32-130 fixed, 0.69x-0.76x of the time of a pass with two solves for each).
    Many: a new factor of the free block.
    """
    factor = half.factor
    s, b = r.shape[0], fixed.shape[0]
    if b == 0:
        nu = _ratio(float(xp.sum(base[:, 0])) - 1.0, float(xp.sum(base[:, 1])))
        return (None, None) if nu is None else (base[:, 0] - nu * base[:, 1], fixed[:0])
    if schur_fraction * b > s:
        free = xp.nonzero(~xp.mask(s, fixed))
        factor_free = xp.cholesky(xp.submatrix(h, free))
        if factor_free is None:
            return None, None
        y = xp.cholesky_apply(factor_free, xp.stack([r[free], xp.full(free.shape[0], 1.0)], axis=1))
        nu = _ratio(float(xp.sum(y[:, 0])) - 1.0, float(xp.sum(y[:, 1])))
        if nu is None:
            return None, None
        x = xp.zeros(s)
        x[free] = y[:, 0] - nu * y[:, 1]
        return x, (xp.symv(h, x) - r + nu)[fixed]
    w = half(fixed)  # (s, b)
    system = xp.zeros(b + 1, b + 1)  # unknowns (nu, mu): rows x_B = 0 and sum x = 1
    system[:b, 0] = -base[fixed, 1]
    system[:b, 1:] = w.T @ w
    system[b, 0] = -xp.sum(base[:, 1])
    system[b, 1:] = base[fixed, 1]  # 1' H^-1 E_B = (H^-1 1)_B
    rhs = xp.concat([-base[fixed, 0], xp.full(1, 1.0 - float(xp.sum(base[:, 0])))])
    sol = xp.solve(system, rhs)
    nu, mu = sol[0], sol[1:]
    x = base[:, 0] - nu * base[:, 1] + xp.cholesky_back_apply(factor, (w @ mu)[:, None])[:, 0]  # H^-1 E mu
    x[fixed] = 0.0
    return x, mu


def _bound_qp(xp, h, r, passes: int):
    """``argmin 1/2 x'Hx - r'x`` over ``x >= 0`` by primal-dual active-set passes, or ``None``."""
    s = r.shape[0]
    fixed = xp.index(np.zeros(0, dtype=np.int64))
    for _ in range(passes):
        free = xp.nonzero(~xp.mask(s, fixed))
        x = xp.zeros(s)
        if free.shape[0]:
            factor = xp.cholesky(xp.submatrix(h, free))
            if factor is None:
                return None
            x[free] = xp.cholesky_apply(factor, r[free][:, None])[:, 0]
        mu = (xp.symv(h, x) - r)[fixed]
        now_fixed = xp.nonzero((xp.mask(s, fixed) & ~xp.mask(s, fixed[mu < 0])) | (x < 0))
        if now_fixed.shape[0] == fixed.shape[0] and bool((now_fixed == fixed).all()):
            return xp.where(x > 0, x, 0.0)
        fixed = now_fixed
    return None


def _ratio(a: float, b: float) -> float | None:
    """``a / b``, or ``None`` where that is not a finite number (a Hessian too badly scaled for its model)."""
    out = a / b if b != 0.0 else math.inf
    return out if math.isfinite(out) else None
