"""Factories and reshape/view check the shapes they are given and name themselves in the error
(NumPy's own messages name neither the call nor the shape), and running out of memory says which
call, shape, dtype and size."""

from pathlib import Path

import numpy as np
import pytest

import tinytorch_core as tt

SHAPED_FACTORIES = {"zeros": tt.zeros, "ones": tt.ones, "randn": tt.randn, "rand": tt.rand,
                    "full": lambda *shape: tt.full(shape, 1.0)}


@pytest.mark.parametrize("name", SHAPED_FACTORIES)
def test_factories_refuse_a_negative_dimension_naming_themselves(name):
    with pytest.raises(ValueError, match=rf"^{name}: a shape dimension must be non-negative, got -1 in shape \(2, -1\)"):
        SHAPED_FACTORIES[name](2, -1)


@pytest.mark.parametrize("name", SHAPED_FACTORIES)
@pytest.mark.parametrize("dim, kind", [(2.5, "float"), (2.0, "float"), (True, "bool"), ("3", "str")])
def test_factories_refuse_a_dimension_that_is_not_an_int(name, dim, kind):
    with pytest.raises(TypeError, match=rf"^{name}: a shape dimension must be an int, got .* \({kind}\) in shape"):
        SHAPED_FACTORIES[name](dim, 2)


def test_factories_still_take_every_spelling_of_a_shape():
    assert tt.zeros(2, 3).shape == tt.ones((2, 3)).shape == tt.randn([2, 3]).shape == (2, 3)
    assert tt.zeros(np.int64(4)).shape == (4,) and tt.full(3, 7).shape == (3,) and tt.zeros().shape == ()
    assert tt.zeros(0, 5).shape == (0, 5)


def _overcommits_always() -> bool:
    """With vm.overcommit_memory=1 a 3.64 TiB request may be granted (and ones() would then fill it)."""
    setting = Path("/proc/sys/vm/overcommit_memory")
    return setting.is_file() and setting.read_text().strip() == "1"


@pytest.mark.skipif(_overcommits_always(), reason="this kernel grants any allocation (vm.overcommit_memory=1)")
@pytest.mark.parametrize("call, excerpt", [
    (lambda: tt.zeros(10**12), r"zeros: not enough memory for a tensor of shape \(1000000000000,\) and dtype float32 \(3.64 TiB\)"),
    (lambda: tt.ones((10**6, 10**6)), r"ones: not enough memory for a tensor of shape \(1000000, 1000000\) and dtype float32"),
    (lambda: tt.randn(10**6, 10**6), r"randn: not enough memory for a tensor of shape \(1000000, 1000000\)"),
    (lambda: tt.full((10**6, 10**6), 1), r"full: not enough memory for a tensor of shape \(1000000, 1000000\) and dtype int64"),
    (lambda: tt.arange(10**13), r"arange\(10000000000000\): not enough memory for a tensor of shape \(10000000000000,\) "
                                r"and dtype int64 \(72.8 TiB\)"),
])
def test_running_out_of_memory_names_the_call_shape_dtype_and_size(call, excerpt):
    with pytest.raises(MemoryError, match=rf"^{excerpt}"):
        call()


def test_a_size_no_array_can_have_is_refused_before_allocating():
    with pytest.raises(MemoryError, match=r"^zeros: a tensor of shape \(10000000000, 10000000000\) and dtype float32 "
                                          r"would need .* EiB, more than any array can hold"):
        tt.zeros(10**10, 10**10)
    with pytest.raises(MemoryError, match=r"^arange\(100000000000000000000\): .* more than any array can hold"):
        tt.arange(10**20)


@pytest.mark.parametrize("value, kind", [("a", "str"), (None, "NoneType"), (1 + 2j, "complex"), ([1], "list")])
def test_full_refuses_a_fill_value_that_is_not_a_number(value, kind):
    with pytest.raises(TypeError, match=rf"^full: the fill value must be a number \(bool, int or float\), got {kind}"):
        tt.full((2,), value)


def test_full_still_takes_numbers_and_0d_tensors():
    assert tt.full((2,), np.float32(1.5)).dtype == np.float32
    assert tt.full((2,), tt.tensor(2.0)).data.tolist() == [2.0, 2.0]
    assert tt.arange(0, 1, 0.25).dtype == np.float32 and tt.arange(3).dtype == np.int64


@pytest.mark.parametrize("op", ["reshape", "view"])
@pytest.mark.parametrize("shape, bad", [((-5,), -5), ((-3, 2), -3), ((3, -2), -2)])
def test_reshape_and_view_refuse_negative_dimensions_other_than_minus_one(op, shape, bad):
    x = tt.zeros(2, 3)
    with pytest.raises(ValueError, match=rf"^{op}: invalid shape dimension {bad} in shape"):
        getattr(x, op)(*shape)


@pytest.mark.parametrize("op", ["reshape", "view"])
def test_reshape_and_view_refuse_two_inferred_dimensions_and_non_int_dimensions(op):
    x = tt.zeros(2, 3)
    with pytest.raises(ValueError, match=rf"^{op}: only one dimension can be inferred, but shape \(-1, -1\) has several -1"):
        getattr(x, op)(-1, -1)
    with pytest.raises(TypeError, match=rf"^{op}: a shape dimension must be an int, got 2.0 \(float\) in shape \(2.0, 3\)"):
        getattr(x, op)(2.0, 3)
    assert getattr(x, op)(3, -1).shape == (3, 2) and getattr(x, op)([-1]).shape == (6,)


def test_factory_dtypes_as_in_pytorch():
    for make in (tt.zeros, tt.ones, tt.randn, tt.rand):
        assert make(2, dtype=None).dtype == np.float32  # np.dtype(None) would be float64
    for make in (tt.randn, tt.rand):
        with pytest.raises(TypeError, match="expected a floating-point dtype, got int64"):
            make(3, dtype=np.int64)
    for dtype in (complex, object):
        with pytest.raises(TypeError, match="zeros: expected a float, int or bool dtype"):
            tt.zeros(2, dtype=dtype)
    with pytest.raises(ValueError, match=r"arange\(0, 2.5, 0.5\): start, stop and step must be whole numbers"):
        tt.arange(0, 2.5, 0.5, dtype=np.int64)  # was [0, 0, 0, 0, 0]
    np.testing.assert_array_equal(tt.arange(0, 4.0, 1.0, dtype=np.int64).data, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="full: the fill value nan cannot be held by a tensor of dtype int64"):
        tt.full((2,), float("nan"), dtype=np.int64)  # was the int64 minimum


def test_a_python_integer_beyond_int64_is_refused_not_made_unsigned():
    with pytest.raises(OverflowError, match="do not fit int64"):
        tt.tensor([2**63])  # NumPy's choice, uint64, would turn -x into a huge positive number
    assert tt.tensor(2**63, dtype=np.uint64).dtype == np.uint64
    assert tt.tensor(np.array([2**63], np.uint64)).dtype == np.uint64
