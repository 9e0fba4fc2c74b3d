"""A tensor behaves as a PyTorch user expects where Python and NumPy reach into it: NumPy reads
its array, augmented assignments write in place, comparisons with text are False, hook handles
remove, and the grad-mode switches work as decorators of functions and generators."""

import numpy as np
import pytest

import tinytorch_core as tt


def test_numpy_functions_read_a_tensor_as_its_array_as_in_pytorch():
    t = tt.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    array = np.asarray(t)
    assert array.dtype == np.float32 and array.shape == (2, 2) and np.shares_memory(array, t.data)
    assert np.array(t, dtype=np.float64).dtype == np.float64
    assert not np.shares_memory(np.array(t), t.data)  # np.array copies, as for any array
    np.testing.assert_array_equal(np.concatenate([t, t]), np.concatenate([t.data, t.data]))
    np.testing.assert_allclose(t, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(tt.tensor([t, t]).data, np.stack([t.data, t.data]))  # was an object array
    with pytest.raises(ValueError, match="cannot become another dtype without a copy"):
        np.asarray(t, dtype=np.float64, copy=False)


def test_numpy_refuses_a_tensor_that_requires_grad():
    w = tt.Tensor(np.ones(2), requires_grad=True)
    for convert in (np.asarray, np.array, lambda v: tt.tensor([v, v])):
        with pytest.raises(RuntimeError, match=r"requires grad.*tensor\.detach\(\)"):
            convert(w)
    np.testing.assert_array_equal(np.asarray(w.detach()), [1.0, 1.0])


def test_an_integer_tensor_of_one_element_is_an_index():
    items = ["a", "b", "c"]
    assert items[tt.tensor(2)] == "c" and list(range(tt.tensor(3))) == [0, 1, 2]
    for bad in (tt.tensor(1.0), tt.tensor([1, 2])):
        with pytest.raises(TypeError, match="only integer tensors of a single element can be used as an index"):
            items[bad]


@pytest.mark.parametrize("write, expected", [
    (lambda t: t.__ifloordiv__(2), [2, 3, 7, 8]),
    (lambda t: t.__imod__(4), [1, 2, 7, 8]),
    (lambda t: t.__ipow__(2), [25, 36, 7, 8]),
    (lambda t: t.__iand__(tt.tensor([1, 1])), [1, 0, 7, 8]),
    (lambda t: t.__ior__(tt.tensor([2, 1])), [7, 7, 7, 8]),
])
def test_every_augmented_assignment_writes_in_place_through_views_and_aliases(write, expected):
    base = tt.tensor([5, 6, 7, 8])
    view = base[0:2]
    result = write(view)
    assert result is view  # x //= 2 rebinds x to itself: aliases and views see the write
    np.testing.assert_array_equal(base.data, expected)


def test_augmented_power_on_a_tensor_that_requires_grad_is_recorded():
    x = tt.Tensor(np.array([1.5, -2.0]), requires_grad=True)
    y = x * 1
    y **= 3
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)


def test_unsigned_subtraction_in_place_wraps_as_out_of_place():
    u = tt.tensor(np.array([5, 6], np.uint8))
    u -= tt.tensor(np.array([1, 7], np.uint8))  # was "Python integer -1 out of bounds for uint8"
    np.testing.assert_array_equal(u.data, np.array([5, 6], np.uint8) - np.array([1, 7], np.uint8))


def test_comparing_with_text_is_false_not_a_numpy_error():
    t = tt.tensor([1.0])
    assert (t == "a") is False and (t != "a") is True


def test_a_hook_handle_removes_its_hook():
    w = tt.Tensor(np.ones(2), requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    (w * 2).sum().backward()
    handle.remove()
    (w * 2).sum().backward()
    assert calls == [1]


def test_grad_mode_decorators_as_in_pytorch():
    x = tt.Tensor(np.ones(2), requires_grad=True)

    @tt.no_grad  # without parentheses
    def doubled():
        return x * 2

    @tt.no_grad()
    def batches():  # a generator: its body runs without recording, each time it resumes
        for _ in range(2):
            yield x * 2

    assert not doubled().requires_grad and doubled.__name__ == "doubled"
    assert [b.requires_grad for b in batches()] == [False, False] and tt.is_grad_enabled()
    with tt.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    tt.set_grad_enabled(False)  # a plain call switches at once, as in PyTorch
    try:
        assert not tt.is_grad_enabled()
    finally:
        tt.set_grad_enabled(True)
    with pytest.raises(TypeError, match="set_grad_enabled: mode must be True or False"):
        tt.set_grad_enabled("no")


def test_as_tensor_of_a_tensor_keeps_its_graph():
    x = tt.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    assert tt.as_tensor(x) is x
    (tt.as_tensor(x, dtype=np.float32) * 2 + x).sum().backward()  # was [1, 1, 1]: the cast cut the graph
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 3.0])


def test_pytorchs_metadata_and_device_spellings():
    x = tt.Tensor(np.arange(6.0).reshape(2, 3))
    assert (x.size(), x.size(-1), x.numel(), x.nelement(), x.dim(), x.ndimension()) == ((2, 3), 3, 6, 6, 2, 2)
    assert x.element_size() == 4 and x.is_floating_point() and not tt.tensor([1]).is_floating_point()
    assert x.device == "cpu" and x.cpu() is x and x.contiguous() is x and x.half().dtype == np.float16


def test_amax_amin_and_std_as_in_pytorch():
    data = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]])
    x = tt.Tensor(data, dtype=np.float64, requires_grad=True)
    np.testing.assert_array_equal(x.amax(1).data, [4.0, 9.0])
    np.testing.assert_array_equal(x.amin(dim=(0, 1)).data, 1.0)
    np.testing.assert_allclose(x.std().data, data.std(ddof=1))
    np.testing.assert_allclose(x.std(1, keepdim=True).data, data.std(axis=1, ddof=1, keepdims=True))
    x.std().backward()
    centered = data - data.mean()
    np.testing.assert_allclose(x.grad.data, centered / ((data.size - 1) * data.std(ddof=1)))


def test_backward_takes_pytorchs_gradient_keyword_and_refuses_what_it_cannot_do():
    x = tt.Tensor(np.ones(3), dtype=np.float64, requires_grad=True)
    (x * 2).backward(gradient=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])
    for options in ({"create_graph": True}, {"inputs": [x]}):
        with pytest.raises(NotImplementedError, match="create_graph .* and inputs= are not supported"):
            (x * 2).sum().backward(**options)


def test_pytorchs_other_factories():
    np.testing.assert_array_equal(tt.eye(2, 3).data, np.eye(2, 3))
    assert tt.eye(2).dtype == np.float32
    np.testing.assert_allclose(tt.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(tt.empty(2, 3).data, np.zeros((2, 3)))  # never uninitialised memory
    ints = tt.randint(10, (1000,), generator=0)
    assert ints.dtype == np.int64 and ints.data.min() >= 0 and ints.data.max() <= 9
    assert tt.randint(3, 5, (100,), generator=0).data.min() >= 3
    with pytest.raises(ValueError, match="expected low < high"):
        tt.randint(5, 5, (2,))
    array = np.zeros(3)
    shared = tt.from_numpy(array)
    array[0] = 7.0
    assert shared.dtype == np.float64 and shared.data[0] == 7.0
    like = tt.Tensor(np.ones((2, 2)), dtype=np.float64)
    assert tt.full_like(like, 3).data.tolist() == [[3.0, 3.0], [3.0, 3.0]] and tt.zeros_like(like, dtype=np.int64).dtype == np.int64
    assert tt.randn_like(like, generator=0).dtype == np.float64 and tt.rand_like(like, generator=0).shape == (2, 2)


def test_more_pytorch_spellings():
    m = tt.Tensor(np.arange(6.0).reshape(2, 3))
    assert m.t().shape == (3, 2) and m.H.shape == (3, 2) and m.mH.shape == (3, 2) and m.type() == "float32"
    assert m.type(np.float64).dtype == np.float64 and m.equal(m * 1) and not m.equal(m[0])
    with pytest.raises(ValueError, match="t\\(\\): expects a tensor of at most 2 dimensions"):
        tt.zeros(2, 2, 2).t()
    assert f"{tt.tensor(1.23456):.2f}" == "1.23" and tt.allclose(m, m.data + 1e-9) and not tt.allclose(m, m + 1)
    for call in (lambda: m.to("cpu", np.float64), lambda: m.to(device="cpu", dtype=np.float64),
                 lambda: m.to(tt.Tensor(np.zeros(1), dtype=np.float64))):
        assert call().dtype == np.float64
    assert m.to(device="cpu") is m
    with pytest.raises(TypeError, match="got 2 dtypes"):
        m.to(np.float64, dtype=np.float16)


def test_bitwise_xor_and_shifts_and_reflected_forms():
    a, b = tt.tensor([1, 2, 6]), tt.tensor([3, 3, 3])
    np.testing.assert_array_equal((a ^ b).data, [2, 1, 5])
    np.testing.assert_array_equal((a << 1).data, [2, 4, 12])
    np.testing.assert_array_equal((a >> 1).data, [0, 1, 3])
    np.testing.assert_array_equal((np.array([True, False]) & tt.tensor([True, True])).data, [True, False])
    np.testing.assert_array_equal((5 ^ a).data, [4, 7, 3])
    a ^= b
    np.testing.assert_array_equal(a.data, [2, 1, 5])
    with pytest.raises(TypeError, match="<< needs integer operands, got float32"):
        tt.tensor([1.0]) << 1


def test_detach_in_place_leaves_the_graph():
    x = tt.Tensor(np.ones(2), requires_grad=True)
    y = x * 2
    assert y.detach_() is y and not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="detach_\\(\\) on a view"):
        (x * 2)[0:1].detach_()


def test_factories_take_pytorchs_keywords_and_tensor_sizes():
    assert tt.zeros(size=(2, 3)).shape == (2, 3) and tt.randn(size=(4,), generator=0).shape == (4,)
    assert tt.full((2,), fill_value=3.0).data.tolist() == [3.0, 3.0]
    np.testing.assert_array_equal(tt.arange(end=3).data, [0, 1, 2])
    np.testing.assert_array_equal(tt.arange(0, 2, step=0.5).data, [0, 0.5, 1, 1.5])
    assert tt.arange(3.0, requires_grad=True).requires_grad
    assert tt.zeros(tt.tensor(2), 3).shape == (2, 3) and tt.ones(tt.tensor([2, 4])).shape == (2, 4)
    with pytest.raises(TypeError, match="give the shape once"):
        tt.zeros(2, size=(2,))


def test_in_place_integer_division_by_zero_is_refused_as_out_of_place():
    """x //= 0 and x %= 0 on integers gave 0 silently (NumPy's), where x // 0 raises."""
    for write in (lambda t: t.__ifloordiv__(0), lambda t: t.__imod__(tt.tensor([1, 0]))):
        x = tt.tensor([7, 8])
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            write(x)
        np.testing.assert_array_equal(x.data, [7, 8])


def test_a_tensor_pickled_before_requires_grad_became_checked_still_loads():
    """Pickles restore slots with setattr, in slot order; the old slot was named requires_grad."""
    t = object.__new__(tt.Tensor)
    old_slots = {"data": np.array([3.0, 4.0], np.float32), "requires_grad": False, "grad": None, "_node": None,
                 "_out_index": 0, "_version_counter": [0], "_grad_hooks": None, "_view": None, "_views": None}
    for name, value in old_slots.items():
        setattr(t, name, value)
    assert not t.requires_grad and (t * 2).data.tolist() == [6.0, 8.0]


def test_retain_grad_keeps_a_computed_tensors_gradient():
    x = tt.Tensor(np.array([1.0, 2.0]), dtype=np.float64, requires_grad=True)
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.retain_grad()
    z.backward()
    np.testing.assert_array_equal(y.grad.data, 2 * y.data)  # dz/dy
    assert z.grad.item() == 1.0 and z.grad.data.flags.writeable  # the seed, copied
    np.testing.assert_array_equal(x.grad.data, 18 * x.data)  # what flows on is unchanged
    y.grad.data[:] = 0  # the kept gradient is its own array
    np.testing.assert_array_equal(x.grad.data, 18 * x.data)
    x.retain_grad()  # a leaf keeps its gradient anyway
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.tensor([1.0]).__mul__(2).retain_grad()


def test_arange_reads_one_positional_argument_as_the_start_when_end_is_given():
    np.testing.assert_array_equal(tt.arange(1, end=5).data, [1, 2, 3, 4])  # was 0..4
    for call in (lambda: tt.arange(0, 10, 2, step=3), lambda: tt.arange(5, start=2)):
        with pytest.raises(TypeError, match="given twice"):
            call()


def test_shifts_in_place_and_reflected():
    x = tt.tensor([1, 2, 4])
    view = x[0:2]
    view <<= 1
    x >>= 1
    np.testing.assert_array_equal(x.data, [1, 2, 2])
    np.testing.assert_array_equal((3 << tt.tensor([1, 2])).data, [6, 12])
    np.testing.assert_array_equal((16 >> tt.tensor([1, 2])).data, [8, 4])


def test_from_numpy_takes_a_memory_mapped_array(tmp_path):
    mapped = np.memmap(tmp_path / "data.bin", dtype=np.float32, mode="w+", shape=(3,))
    shared = tt.from_numpy(mapped)
    mapped[1] = 5.0
    assert type(shared.data) is np.ndarray and shared.data[1] == 5.0


def test_a_retained_gradient_follows_an_in_place_change():
    """As in PyTorch, y.grad is the gradient of y's value after y.mul_(3), not before it."""
    x = tt.Tensor(np.array([1.0, 2.0]), dtype=np.float64, requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.mul_(3)
    (y * y).sum().backward()
    np.testing.assert_array_equal(y.grad.data, 2 * y.data)
    np.testing.assert_array_equal(x.grad.data, 72 * x.data)


def test_a_tensor_that_retains_its_gradient_pickles_and_copies():
    import copy
    import pickle

    x = tt.Tensor(np.array([1.0, 2.0]), dtype=np.float64, requires_grad=True)
    y = x * 3
    y.retain_grad()
    loss = (y * y).sum()
    copied = pickle.loads(pickle.dumps(loss))  # a weak reference could not be pickled
    copied.backward()
    assert y.grad is None and x.grad is None  # the copy's graph, not the original's
    twin = copy.deepcopy(loss)
    twin.backward()
    assert y.grad is None
    loss.backward()
    np.testing.assert_array_equal(y.grad.data, 2 * y.data)
