"""TINYTORCH_BLAS_THREADS out of range is refused with a warning, and the note reports what
OpenBLAS really uses (the setter takes a C int, and OpenBLAS caps counts at its build's limit)."""

import pytest

from tinytorch_milestones import blas


@pytest.fixture
def clean_environ(monkeypatch):
    for variable in ("TINYTORCH_BLAS_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["4294967297", "100000", "257", "0", "-5"])
def test_a_blas_thread_count_out_of_range_warns_and_leaves_blas_alone(clean_environ, value):
    clean_environ.setenv("TINYTORCH_BLAS_THREADS", value)
    with pytest.warns(RuntimeWarning, match=rf"TINYTORCH_BLAS_THREADS='{value}' is not a thread count from 1 to "
                                            rf"{blas.MAX_THREADS}; BLAS is left as it is"):
        assert blas.requested_threads() is None


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), (str(blas.MAX_THREADS), blas.MAX_THREADS)])
def test_a_blas_thread_count_in_range_is_used(clean_environ, value, expected):
    clean_environ.setenv("TINYTORCH_BLAS_THREADS", value)
    assert blas.requested_threads() == expected


def test_the_note_reports_the_threads_openblas_really_uses(clean_environ):
    before = blas.openblas_threads()
    if before is None:
        pytest.skip("NumPy is not using an OpenBLAS this process can ask")
    clean_environ.setenv("TINYTORCH_BLAS_THREADS", str(blas.MAX_THREADS))
    with blas.blas_threads() as note:
        used = blas.openblas_threads()
        assert note.startswith(f"OpenBLAS threads: {used}")
        if used != blas.MAX_THREADS:  # every common build caps below 256
            assert f"not the {blas.MAX_THREADS} asked for" in note
    assert blas.openblas_threads() == before
