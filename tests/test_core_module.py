"""Module and Parameter: registration, traversal, modes, state dicts, dtype casts, printing."""

import numpy as np
import pytest

from tinytorch_core import Module, ModuleList, Parameter, StateDictError, Tensor


class Affine(Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = Parameter(np.full((n_out, n_in), 0.5))
        self.bias = Parameter(np.zeros(n_out))
        self.register_buffer("calls", Tensor([0.0]))

    def forward(self, x):
        return x @ self.weight.T + self.bias

    def extra_repr(self):
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}"


class Net(Module):
    def __init__(self):
        super().__init__()
        self.first = Affine(3, 4)
        self.blocks = ModuleList([Affine(4, 4), Affine(4, 2)])
        self.note = "not a parameter"

    def forward(self, x):
        x = self.first(x)
        for block in self.blocks:
            x = block(x)
        return x


def test_parameters_and_submodules_register_in_assignment_order():
    names = [n for n, _ in Net().named_parameters()]
    assert names == [
        "first.weight", "first.bias",
        "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight", "blocks.1.bias",
    ]
    assert [n for n, _ in Net().named_modules()] == ["", "first", "blocks", "blocks.0", "blocks.1"]


def test_parameter_requires_grad_and_reassignment_unregisters():
    net = Net()
    assert all(p.requires_grad for p in net.parameters())
    net.first.bias = None
    assert "first.bias" not in dict(net.named_parameters())


def test_shared_parameter_is_listed_once():
    net = Net()
    net.blocks[0].weight = net.blocks[1].weight = Parameter(np.ones((4, 4)))
    assert sum(1 for _ in net.parameters()) == 5


def test_forgetting_super_init_is_a_clear_error():
    class Broken(Module):
        def __init__(self):
            self.w = Parameter([1.0])

    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_train_eval_and_zero_grad_reach_every_submodule():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(Tensor(np.ones((2, 3))))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_copies_values_in_place():
    a, b = Net(), Net()
    for p in a.parameters():
        p.data[...] = np.random.default_rng(0).standard_normal(p.shape)
    before = b.first.weight
    b.load_state_dict(a.state_dict())
    assert b.first.weight is before  # optimizers keep their references
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    assert "first.calls" in a.state_dict()


def test_load_state_dict_reports_missing_unexpected_and_misshaped_keys():
    net = Net()
    state = net.state_dict()
    del state["first.bias"]
    state["extra.weight"] = np.zeros(2)
    state["blocks.1.weight"] = np.zeros((3, 3))
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(state)
    text = str(info.value)
    assert "missing keys: ['first.bias']" in text
    assert "unexpected keys: ['extra.weight']" in text
    assert "blocks.1.weight: checkpoint (3, 3) vs model (2, 4)" in text


def test_non_strict_load_skips_missing_and_unexpected_keys():
    net = Net()
    state = {"first.weight": np.zeros((4, 3)), "unknown": np.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    assert "unknown" in result["unexpected_keys"]
    np.testing.assert_array_equal(net.first.weight.data, 0)


def test_to_float64_casts_parameters_and_buffers():
    net = Net().to(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(b.dtype == np.float64 for b in net.buffers())
    with pytest.raises(TypeError, match="floating"):
        net.to(np.int32)


def test_repr_is_a_readable_tree():
    text = repr(Net())
    assert "(first): Affine(in=3, out=4)" in text
    assert "(blocks): ModuleList(" in text and "(1): Affine(in=4, out=2)" in text


def test_module_list_holds_only_modules():
    with pytest.raises(TypeError, match="Modules"):
        ModuleList([1])


def test_calling_a_module_runs_the_most_derived_forward_and_keeps_an_explicit_call():
    class Double(Module):
        def forward(self, x):
            return 2 * x

    class Quadruple(Double):
        def forward(self, x):
            return 4 * x

    class Inherits(Quadruple):
        pass

    class Logged(Double):
        def __call__(self, x):
            return ("called", super().__call__(x))

    assert Double()(1) == 2 and Quadruple()(1) == 4 and Inherits()(1) == 4
    assert Logged()(1) == ("called", 2)
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(1)
