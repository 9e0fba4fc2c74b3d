"""BLAS thread control: one thread inside the block by default, the previous count restored after."""

import pytest

from tinytorch_milestones import blas


def test_blas_threads_limits_and_restores(monkeypatch):
    before = blas.openblas_threads()
    if before is None:
        pytest.skip("NumPy is not using an OpenBLAS this process can ask")
    for variable in ("TINYTORCH_BLAS_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    with blas.blas_threads() as note:
        assert blas.openblas_threads() == 1
        assert "OpenBLAS threads: 1" in note
    assert blas.openblas_threads() == before


@pytest.mark.parametrize(
    "environ, expected",
    [({}, 1), ({"TINYTORCH_BLAS_THREADS": "auto"}, None), ({"TINYTORCH_BLAS_THREADS": "3"}, 3),
     ({"OPENBLAS_NUM_THREADS": "2"}, None)],
)
def test_requested_threads_follows_the_environment(monkeypatch, environ, expected):
    for variable in ("TINYTORCH_BLAS_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert blas.requested_threads() == expected


def test_a_blas_thread_count_that_is_not_a_number_warns_and_leaves_blas_alone(monkeypatch):
    from tinytorch_milestones.blas import requested_threads

    monkeypatch.setenv("TINYTORCH_BLAS_THREADS", "banana")
    with pytest.warns(RuntimeWarning, match="TINYTORCH_BLAS_THREADS='banana' is neither a number nor 'auto'"):
        assert requested_threads() is None
