"""The autograd engine: ordering, accumulation, graph freeing, and every misuse error."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Function, GraphError, Tensor, enable_grad, no_grad


def leaf(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype=dtype), requires_grad=True, dtype=dtype)


class CountingIdentity(Function):
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        CountingIdentity.calls += 1
        return grad


def test_long_chain_backpropagates_without_recursion_error():
    x = leaf([1.5])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**10_000], rtol=1e-9)


def test_diamond_graph_visits_each_node_once_and_sums_gradients():
    CountingIdentity.calls = 0
    x = leaf([2.0, 3.0])
    shared = CountingIdentity.apply(x)  # used by many consumers
    total = shared * 1.0
    for k in range(2, 50):
        total = total + shared * float(k)
    total.sum().backward()
    assert CountingIdentity.calls == 1
    np.testing.assert_allclose(x.grad.data, [sum(range(1, 50))] * 2)


def test_deep_diamond_ladder_is_linear_not_exponential():
    CountingIdentity.calls = 0
    x = leaf([1.0])
    y = x
    for _ in range(60):  # each rung doubles the number of paths: 2**60 if paths were walked
        y = CountingIdentity.apply(y)
        y = y + y
    y.backward()
    assert CountingIdentity.calls == 60
    np.testing.assert_allclose(x.grad.data, [2.0**60])


def test_leaf_gradients_accumulate_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 7.0])
    x.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_leaf_gradient_owns_its_memory_when_two_leaves_get_the_same_array():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data *= 10
    np.testing.assert_allclose(b.grad.data, [1.0, 1.0])


def test_backward_twice_through_freed_graph_names_the_op():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(GraphError, match=r"core::sum.*second time.*retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.exp([1.0, 2.0]))


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([[1.0, 2.0]])
    with pytest.raises(GraphError, match=r"non-scalar.*\(1, 2\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.ones((1, 2)))
    np.testing.assert_allclose(x.grad.data, [[2.0, 2.0]])
    with pytest.raises(GraphError, match="shape"):
        (x * 2.0).backward(np.ones(3))


def test_backward_of_tensor_without_grad_is_an_error():
    with pytest.raises(GraphError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_no_grad_and_enable_grad_as_context_managers_and_decorators():
    x = leaf([1.0])
    with no_grad():
        y = x * 2.0
        with enable_grad():
            z = x * 3.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @no_grad()
    def predict(t):
        return t * 2.0

    assert not predict(x).requires_grad
    assert tt.is_grad_enabled()


def test_in_place_change_of_saved_input_is_detected_and_names_the_op():
    x = leaf([1.0, 2.0])
    w = Tensor([3.0, 4.0], dtype=np.float64)
    y = (x * w).sum()
    w.add_(1.0)  # w was saved by core::mul
    with pytest.raises(GraphError, match=r"core::mul.*modified in place"):
        y.backward()


def test_in_place_change_through_a_view_is_detected():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    base = Tensor(np.ones((2, 2)), dtype=np.float64)
    view = base.reshape(4)
    y = (x.reshape(4) * view).sum()  # mul saved `view`, which shares memory with base
    base.mul_(2.0)
    with pytest.raises(GraphError, match="modified in place"):
        y.backward()


def test_in_place_on_leaf_requiring_grad_is_refused_outside_no_grad():
    p = leaf([1.0])
    with pytest.raises(RuntimeError, match="no_grad"):
        p.add_(1.0)
    with no_grad():
        p.add_(1.0)
    np.testing.assert_allclose(p.data, [2.0])


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad


class WrongShape(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        return np.ones((5, 5))


class DropsGradient(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        return None


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda x: WrongCount.apply(x, x), r"WrongCount returned 1 gradient\(s\) for 2"),
        (lambda x: WrongShape.apply(x), r"WrongShape returned a gradient of shape \(5, 5\).*\(3,\)"),
        (lambda x: DropsGradient.apply(x), r"DropsGradient returned None for input 0"),
    ],
)
def test_engine_validates_what_backward_returns_and_names_the_function(fn, message):
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(GraphError, match=message):
        fn(x).sum().backward()


def test_broadcast_gradients_are_reduced_to_input_shapes():
    a = leaf(np.arange(3.0).reshape(3, 1))
    b = leaf(np.arange(4.0).reshape(1, 4))
    c = leaf(2.0)
    ((a * b + c) ** 2).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4) and c.grad.shape == ()
    full = a.data * b.data + c.data
    np.testing.assert_allclose(a.grad.data, (2 * full * b.data).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(b.grad.data, (2 * full * a.data).sum(axis=0, keepdims=True))
    np.testing.assert_allclose(c.grad.data, (2 * full).sum())


def test_non_tensor_arguments_pass_through_with_no_gradient():
    class ScaleBy(Function):
        @staticmethod
        def forward(ctx, x, factor):
            ctx.factor = factor
            return x * factor

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.factor, None

    x = leaf([1.0, 2.0])
    ScaleBy.apply(x, 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 5.0])


def test_keyword_tensor_requiring_grad_is_refused():
    class Opt(Function):
        @staticmethod
        def forward(ctx, x, mask=None):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(TypeError, match="positionally"):
        Opt.apply(leaf([1.0]), mask=leaf([1.0]))


def test_saved_arrays_are_released_after_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    with pytest.raises(GraphError, match="freed"):
        node.saved_tensors


def test_integer_results_carry_no_gradient():
    x = leaf([1.0, 5.0, 2.0])
    assert not x.argmax().requires_grad
    assert not (x > 1.0).requires_grad


def test_scalar_seed_reaching_leaves_directly_is_copied_into_writable_gradients():
    # a + b passes the implicit 0-d seed straight through to both leaves
    a, b = leaf(1.0), leaf(2.0)
    (a + b).backward()
    assert a.grad.data.flags.writeable and b.grad.data.flags.writeable
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data += 5.0  # must not leak into b or into the next backward's seed
    c = leaf(3.0)
    (c * 1.0).backward()
    assert b.grad.item() == 1.0 and c.grad.item() == 1.0


class WritesIntoIncomingGradient(Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum()

    @staticmethod
    def backward(ctx, grad):
        grad *= 2.0  # a bug: the incoming gradient may be shared
        return np.full((2,), grad)


def test_backward_that_writes_into_the_scalar_seed_fails_loudly():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        WritesIntoIncomingGradient.apply(x).backward()


class SavesAll(Function):
    @staticmethod
    def forward(ctx, x, w):
        out = x * w
        ctx.save_for_backward(x, w, out, out * 2.0)  # the last one is private to the node
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w, _, _ = ctx.saved_tensors
        return grad * w, grad * x


@pytest.mark.parametrize("changed", ["input that requires grad", "input without grad", "output"])
def test_changing_any_saved_tensor_in_place_invalidates_the_graph(changed):
    x, w = leaf([1.0, 2.0]), Tensor([3.0, 4.0], dtype=np.float64)
    y = SavesAll.apply(x, w)
    target = {"input that requires grad": x, "input without grad": w, "output": y}[changed]
    with no_grad():
        target.add_(1.0)
    with pytest.raises(GraphError, match="modified in place"):
        y.sum().backward()


def test_in_place_changes_to_other_tensors_leave_the_graph_usable():
    x, w = leaf([1.0, 2.0]), Tensor([3.0, 4.0], dtype=np.float64)
    y = SavesAll.apply(x, w)
    unrelated = Tensor([5.0], dtype=np.float64)
    version = unrelated._version
    with no_grad():
        unrelated.add_(1.0)  # moves the in-place clock: backward looks, and finds nothing of its own
    assert unrelated._version > version
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


class ScaledHalves(Function):
    """Two outputs: each half of ``x`` times ``w``; saves ``w`` and the first output."""

    @staticmethod
    def forward(ctx, x, w):
        n = x.shape[0] // 2
        first, second = x[:n] * w, x[n:] * w
        ctx.save_for_backward(w, first)
        return first, second

    @staticmethod
    def backward(ctx, g_first, g_second):
        w, _ = ctx.saved_tensors
        return np.concatenate([g_first, g_second]) * w, None


def test_a_node_with_two_outputs_gets_zeros_for_the_output_nobody_used():
    x, w = leaf([1.0, 2.0, 3.0, 4.0]), Tensor(3.0, dtype=np.float64)
    first, second = ScaledHalves.apply(x, w)
    (first.sum() + second.sum() * 2.0).backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 6.0, 6.0])
    x.grad = None
    first, _ = ScaledHalves.apply(x, w)
    first.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 0.0, 0.0])


@pytest.mark.parametrize("changed, fails", [("first output (saved)", True), ("second output", False),
                                            ("w (saved input)", True)])
def test_a_node_with_two_outputs_notices_in_place_changes_of_what_it_saved(changed, fails):
    x, w = leaf([1.0, 2.0, 3.0, 4.0]), Tensor(3.0, dtype=np.float64)
    first, second = ScaledHalves.apply(x, w)
    target = {"first output (saved)": first, "second output": second, "w (saved input)": w}[changed]
    with no_grad():
        target.add_(1.0)
    loss = first.sum() + second.sum()
    if fails:
        with pytest.raises(GraphError, match="modified in place"):
            loss.backward()
    else:
        loss.backward()
        np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 3.0, 3.0])


class SavesItsInput(Function):
    """Returns its input array itself, and saves it: input and output tensors share the array."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


@pytest.mark.parametrize("changed", ["input", "output"])
def test_an_array_shared_by_input_and_output_is_watched_through_both(changed):
    x = leaf([1.0, -2.0])
    y = SavesItsInput.apply(x)
    assert y.data is x.data
    with no_grad():
        (x if changed == "input" else y).mul_(2.0)
    with pytest.raises(GraphError, match="modified in place"):
        (y * 1.0).sum().backward()


def test_needs_input_grad_has_one_entry_per_forward_input_passed_or_not():
    seen = []

    class Scale(Function):
        @staticmethod
        def forward(ctx, a, factor=None, *, note=""):
            seen.append(ctx.needs_input_grad)
            return a * (2.0 if factor is None else factor)

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0, None  # a None for the factor the caller did not pass is accepted

    w = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    Scale.apply(w).sum().backward()
    assert seen == [(True, False)]
    assert np.allclose(w.grad.data, 2.0)

    class Wrong(Scale):
        @staticmethod
        def backward(ctx, grad):
            return grad, grad  # a gradient for an input that was never passed is refused

    with pytest.raises(GraphError, match="returned 2 gradient"):
        Wrong.apply(w).sum().backward()


@pytest.mark.parametrize("gradient", [lambda g: g * (2 + 1j), lambda g: g.astype(object), lambda g: g.astype(str),
                                      lambda g: np.ma.masked_array(g, mask=True)])
def test_a_backward_returning_a_gradient_that_is_not_real_numbers_is_named(gradient):
    """A complex gradient lost its imaginary part with only a ComplexWarning; a masked one its
    mask; a text one raised NumPy's conversion error, naming no op."""

    class OddGradient(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return gradient(grad * 2.0)

    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tt.GraphError, match=r"backward of .*OddGradient returned a .*return a real \(float\) array"):
        OddGradient.apply(x).sum().backward()


@pytest.mark.parametrize("output", [lambda a: None, lambda a: "done", lambda a: (a * 2.0, None), lambda a: {"a": a},
                                    lambda a: np.array([a, "x"], dtype=object), lambda a: a.astype(np.complex128)])
def test_a_forward_returning_something_other_than_numbers_is_named(output):
    """A forward that forgot its return gave None (or an object tensor) back, and the failure
    surfaced later, far from the op ('NoneType' has no attribute 'backward')."""

    class OddForward(Function):
        @staticmethod
        def forward(ctx, a):
            return output(a)

    with pytest.raises(tt.GraphError, match=r"forward of .*OddForward returned (an array of )?\w+; a forward returns arrays"):
        OddForward.apply(tt.tensor([1.0, 2.0], requires_grad=True))
