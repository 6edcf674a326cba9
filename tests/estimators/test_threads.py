"""Thread scope of the numerical kernels: set inside, restored after (also on error), results unchanged.

No test times anything: the speed of the policy is measured in ``benchmarks/bench_threads.py``.
"""

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch  # imported up front: the pools compared before and after a call are then the same libraries
from threadpoolctl import threadpool_info, threadpool_limits

from estimators import _threads, knn, limit_threads
from estimators import blahut_arimoto as ba
from estimators.blahut_arimoto import (
    channel_capacity,
    distortion_rate,
    ib_curve,
    information_bottleneck,
    rate_distortion,
    rd_curve,
)
from estimators.knn import kl_entropy, ksg_mi_estimate, mixed_mi_estimate


def _pools() -> dict[str, int]:
    """Thread count of every BLAS/OpenMP pool of the process, by library file."""
    return {p["filepath"]: p["num_threads"] for p in threadpool_info()}


def _torch_threads() -> int:
    return torch.get_num_threads()


@pytest.fixture
def three_threads():
    """Every pool and torch at 3 threads around the test, the previous counts after."""
    old_torch = torch.get_num_threads()
    with threadpool_limits(limits=3):
        torch.set_num_threads(3)
        try:
            yield
        finally:
            torch.set_num_threads(old_torch)


def _settable() -> set[str]:
    """The pools that take a thread count: a single-threaded build (one a solver's wheel bundles) stays at 1."""
    with threadpool_limits(limits=3):
        return {p["filepath"] for p in threadpool_info() if p["num_threads"] == 3}


def _all_at(pools: dict[str, int], n: int) -> bool:
    settable = _settable() & set(pools)
    return bool(settable) and all(pools[k] == n for k in settable)


# --------------------------------------------------------------------------
# the context manager


def test_limit_threads_sets_the_pools_and_restores_them(three_threads):
    before, torch_before = _pools(), _torch_threads()
    assert _all_at(before, 3)
    with limit_threads(1):
        assert _all_at(_pools(), 1)
        assert _torch_threads() == 1
    assert _pools() == before
    assert _torch_threads() == torch_before


def test_limit_threads_restores_on_error(three_threads):
    before, torch_before = _pools(), _torch_threads()
    with pytest.raises(ZeroDivisionError):
        with limit_threads(2):
            assert _all_at(_pools(), 2)
            1 / 0
    assert _pools() == before
    assert _torch_threads() == torch_before
    assert not _threads._OPEN and not _threads._SAVED


def test_nested_blocks_restore_the_enclosing_count(three_threads):
    before = _pools()
    with limit_threads(2):
        with limit_threads(1):
            assert _all_at(_pools(), 1)
        assert _all_at(_pools(), 2)
    assert _pools() == before


def test_held_at_names_the_count_of_the_innermost_open_scope(three_threads):
    """The kernels skip a nested one-thread scope where one already holds (held_at); the pools are then at it."""
    assert not _threads.held_at(1) and not _threads.held_at(3)
    with _threads.hold_threads(1):
        assert _threads.held_at(1) and not _threads.held_at(2)
        assert _all_at(_pools(), 1)
        with _threads.hold_threads(2):
            assert _threads.held_at(2) and not _threads.held_at(1)
        assert _threads.held_at(1) and _all_at(_pools(), 1)
    with _threads.hold_threads(None):  # leaves the settings: holds no count
        assert not _threads.held_at(1) and not _threads.held_at(3)
    assert not _threads.held_at(1)


@pytest.mark.parametrize("outer", [None, 1, 2])
def test_serial_but_gram_runs_on_one_thread_except_the_gram(three_threads, outer):
    """The Newton solves' scope: one thread inside, the count it was entered from inside gram_threads (the
    caller's 3 where no scope is open), and every count back after, also on an error."""
    before, torch_before = _pools(), _torch_threads()
    enclosing = _threads.hold_threads(outer)
    expected = 3 if outer is None else outer
    with enclosing:
        with pytest.raises(ZeroDivisionError):
            with _threads.serial_but_gram():
                assert _all_at(_pools(), 1) and _torch_threads() == 1
                with _threads.gram_threads():
                    assert _all_at(_pools(), expected) and _torch_threads() == expected
                assert _all_at(_pools(), 1) and _torch_threads() == 1
                1 / 0
        assert _all_at(_pools(), expected)
        with _threads.gram_threads():  # outside serial_but_gram: no change
            assert _all_at(_pools(), expected)
    assert _pools() == before and _torch_threads() == torch_before
    assert not _threads._OPEN and not _threads._SAVED


def test_torch_imported_inside_a_block_is_restored_too():
    code = (
        "import sys\n"
        "from estimators import limit_threads\n"
        "with limit_threads(1):\n"
        "    with limit_threads(1):\n"
        "        import torch\n"
        "        torch.set_num_threads(2)\n"  # the caller's count, set before the outer block sees torch
        "    assert torch.get_num_threads() == 1, torch.get_num_threads()\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"


def test_concurrent_scopes_restore_the_original_counts_when_the_last_leaves():
    """Scopes open at once in two Python threads: every count comes back when the last one is left.

    (Which count holds while both are open depends on the library: OpenMP's count is
    per thread, and OpenBLAS's can be.)
    """
    before, torch_before = _pools(), _torch_threads()
    a_in, b_in, a_left = threading.Event(), threading.Event(), threading.Event()

    def a():
        with limit_threads(1):
            a_in.set()
            b_in.wait(10)
        a_left.set()

    def b():
        a_in.wait(10)
        with limit_threads(2):
            b_in.set()
            a_left.wait(10)
            assert list(_threads._OPEN.values()) == [2]

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not _threads._OPEN and not _threads._SAVED
    assert _pools() == before
    assert _torch_threads() == torch_before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_thread_count_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="threads"):
        limit_threads(bad)


@pytest.mark.parametrize("bad", [0, -2, 2.0, False])
def test_ba_threads_keyword_is_checked(bad):
    with pytest.raises(ValueError, match="threads"):
        channel_capacity([[0.9, 0.1], [0.1, 0.9]], threads=bad)


def test_a_numpy_integer_is_a_thread_count(three_threads):
    with limit_threads(np.int64(1)):
        assert _all_at(_pools(), 1)


def test_default_count_by_size():
    assert _threads.auto_threads(4) == 1
    assert _threads.auto_threads(_threads.SINGLE_THREAD_ENTRIES) == 1
    assert _threads.auto_threads(_threads.SINGLE_THREAD_ENTRIES + 1) is None


# --------------------------------------------------------------------------
# the public entry points


@pytest.fixture
def pools_in_call(monkeypatch):
    """Record the pools' counts inside the solvers of the public functions."""
    seen = []

    def spy(fn):
        def wrapped(*args, **kwargs):
            seen.append(_pools())
            return fn(*args, **kwargs)

        return wrapped

    for name in ("_slope_point", "_best_ib", "_min_distortion_point"):
        monkeypatch.setattr(ba, name, spy(getattr(ba, name)))
    monkeypatch.setattr(ba, "_capacity", spy(ba._capacity))
    return seen


def _problems():
    rng = np.random.default_rng(0)
    p, d = rng.dirichlet(np.ones(6)), rng.random((6, 5))
    w = rng.dirichlet(np.ones(4), size=5)
    p_xy = rng.dirichlet(np.ones(12)).reshape(4, 3)
    return [
        lambda **kw: rate_distortion(p, d, 2.0, **kw),
        lambda **kw: rd_curve(p, d, [0.5, 4.0], **kw),
        lambda **kw: distortion_rate(p, d, 0.2, **kw),
        lambda **kw: channel_capacity(w, **kw),
        lambda **kw: information_bottleneck(p_xy, 3.0, seed=0, restarts=1, **kw),
        lambda **kw: ib_curve(p_xy, [1.0, 5.0], seed=0, restarts=1, **kw),
    ]


@pytest.mark.parametrize("case", range(6))
def test_every_ba_function_runs_in_its_scope_and_restores(case, three_threads, pools_in_call):
    solve = _problems()[case]
    before = _pools()
    solve()  # small problem, default: one thread
    assert pools_in_call and all(_all_at(s, 1) for s in pools_in_call)
    assert _pools() == before
    pools_in_call.clear()
    solve(threads=2)
    assert pools_in_call and all(_all_at(s, 2) for s in pools_in_call)
    assert _pools() == before
    pools_in_call.clear()
    with limit_threads(2):  # an enclosing block decides where threads= is not given
        solve()
    assert pools_in_call and all(_all_at(s, 2) for s in pools_in_call)
    assert _pools() == before


def test_large_problems_keep_the_callers_settings(three_threads, monkeypatch, pools_in_call):
    monkeypatch.setattr(_threads, "SINGLE_THREAD_ENTRIES", 10)
    rate_distortion(np.full(6, 1 / 6), np.random.default_rng(1).random((6, 5)), 2.0)
    assert pools_in_call and all(_all_at(s, 3) for s in pools_in_call)


def test_ba_function_restores_the_pools_on_error(three_threads, monkeypatch):
    before, torch_before = _pools(), _torch_threads()

    def fail(*args, **kwargs):
        assert _all_at(_pools(), 1)
        raise FloatingPointError("injected")

    monkeypatch.setattr(ba, "_capacity", fail)
    with pytest.raises(FloatingPointError):
        channel_capacity([[0.9, 0.1], [0.1, 0.9]], threads=1)
    with pytest.raises(ValueError, match="backend"):
        rd_curve([0.5, 0.5], 1 - np.eye(2), [1.0], backend="no such backend", threads=1)
    assert _pools() == before
    assert _torch_threads() == torch_before


def test_knn_restores_the_pools_on_error(three_threads, monkeypatch):
    before = _pools()
    seen = []
    real = knn._kth_neighbour_distance

    def spy(*args):
        seen.append(_pools())
        return real(*args)

    monkeypatch.setattr(knn, "_kth_neighbour_distance", spy)
    i = np.arange(50)
    x, y = (i % 3).astype(float), (i % 5).astype(float)  # 4 copies of some (x, y): zero kNN distance
    with pytest.raises(ValueError, match="identical"):
        ksg_mi_estimate(x, y, jitter=0, standardize=False)
    assert seen and _all_at(seen[0], 1)  # workers=1: the pools at one thread
    assert _pools() == before


def test_results_identical_with_one_and_two_threads():
    """Sizes where the BLAS does use two threads (timed in benchmarks/bench_threads.py) and sums alike."""
    rng = np.random.default_rng(3)
    n = 200
    w = rng.dirichlet(np.ones(n), size=n)
    p, d = rng.dirichlet(np.ones(n)), rng.random((n, n))
    p_xy = rng.dirichlet(np.ones(n * 16)).reshape(n, 16)
    runs = {
        "capacity": lambda t: channel_capacity(w, tol=1e-8, threads=t).capacity,
        "rd_curve": lambda t: rd_curve(p, d, [1.0, 10.0, 100.0], tol=1e-8, threads=t).rates,
        "rate_distortion": lambda t: rate_distortion(p, d, 5.0, tol=1e-8, threads=t).encoder,
        "distortion_rate": lambda t: distortion_rate(p, d, 0.5, tol=1e-8, threads=t).distortion,
        "information_bottleneck": lambda t: information_bottleneck(
            p_xy, 5.0, n_clusters=8, restarts=1, seed=0, threads=t).encoder,
        "ib_curve": lambda t: ib_curve(p_xy, [2.0, 8.0], n_clusters=8, restarts=0, seed=0, threads=t).relevances,
    }
    for name, run in runs.items():
        np.testing.assert_array_equal(run(1), run(2), err_msg=name)


def test_rd_curve_identical_with_one_and_two_threads_where_the_blas_splits_its_sums():
    """Regression: OpenBLAS splits the float64 ``a @ v`` of a support of 450..500 columns of a 1024-row
    kernel by thread count (AVX2 and AVX-512 builds); before the Newton solves ran on one thread but for
    their Gram, these slopes' marginals moved by ~7e-18 and gaps by ~1e-15 with ``threads=2``."""
    rng = np.random.default_rng(1024)
    p, d = rng.dirichlet(np.ones(1024)), rng.random((1024, 1024))
    one, two = (rd_curve(p, d, [700.0, 1000.0], tol=1e-6, threads=t) for t in (1, 2))
    for a, b in zip(one.points, two.points):
        assert a.marginal.tobytes() == b.marginal.tobytes()
        assert (a.rate, a.distortion, a.gap) == (b.rate, b.distortion, b.gap)


def test_knn_results_identical_with_one_and_two_workers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 3))
    y = x[:, :2] + rng.normal(size=(5000, 2))
    assert ksg_mi_estimate(x, y, seed=0, workers=1) == ksg_mi_estimate(x, y, seed=0, workers=2)
    t = (x[:, 0] > 0).astype(int)
    assert mixed_mi_estimate(x, t, seed=0, workers=1) == mixed_mi_estimate(x, t, seed=0, workers=-1)
    assert kl_entropy(x, seed=0, workers=1) == kl_entropy(x, seed=0, workers=2)


def test_the_thread_scope_does_not_import_torch(imports_torch):
    code = (
        "import numpy as np, estimators\n"
        "with estimators.limit_threads(1):\n"
        "    estimators.ksg_mi(np.arange(50.0), np.arange(50.0) % 7, seed=0)\n"
    )
    assert not imports_torch(code)


def test_torch_imported_by_the_kernels_inside_a_call_is_held_and_restored():
    """A fresh process: the torch backend imports torch mid-call; its threads are held from then on."""
    code = (
        "import sys, numpy as np\n"
        "from estimators import _ba_arrays as be, rd_curve\n"
        "assert 'torch' not in sys.modules\n"
        "seen, real = [], be.TorchBackend.gram\n"
        "def gram(self, *a, **k):\n"
        "    out = real(self, *a, **k)\n"
        "    seen.append(sys.modules['torch'].get_num_threads() if 'torch' in sys.modules else None)\n"
        "    return out\n"
        "be.TorchBackend.gram = gram\n"
        "rng = np.random.default_rng(0)\n"
        "rd_curve(rng.dirichlet(np.ones(30)), rng.random((30, 30)), [1.0, 10.0], threads=1, backend='torch')\n"
        "import torch\n"
        "print(sorted(set(seen)), torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=True)
    assert out.stdout.split("]")[0] + "]" == "[1]"
    assert out.stdout.split("]")[1].strip() == fresh.stdout.strip()
