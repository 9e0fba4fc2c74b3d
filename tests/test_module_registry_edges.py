"""The module registry keeps PyTorch's bookkeeping where a model is edited after it is built:
a name set to None keeps its place, a module or buffer held twice is visited once, a buffer's
persistence follows its last registration, and a buffer cannot take a name already in use."""

from collections import OrderedDict

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Module, Parameter, Tensor
from tinytorch_core.module import StateDictError


class Two(Module):
    def __init__(self):
        super().__init__()
        self.a = Parameter(np.zeros(3, np.float32))
        self.b = Parameter(np.ones(3, np.float32))


def test_a_parameter_set_to_none_and_back_keeps_its_place():
    m = Two()
    m.a = None
    assert [name for name, _ in m.named_parameters()] == ["b"] and list(m.state_dict()) == ["b"]
    m.a = Parameter(np.full(3, 2.0, np.float32))
    assert [name for name, _ in m.named_parameters()] == ["a", "b"] and list(m.state_dict()) == ["a", "b"]
    with pytest.raises(TypeError, match="a parameter of Two"):  # still a parameter's name
        m.a = Tensor(np.zeros(3))


def test_a_sub_module_set_to_none_and_back_keeps_its_place():
    seq = tt.nn.Sequential(tt.nn.Linear(2, 2, generator=0), tt.nn.Linear(2, 2, generator=1))
    before = list(seq.state_dict())
    layer = seq[0]
    setattr(seq, "0", None)
    setattr(seq, "0", layer)
    assert list(seq.state_dict()) == before


def test_a_child_held_under_two_names_is_visited_once():
    class Shared(Module):
        def __init__(self):
            super().__init__()
            self.enc = tt.nn.Linear(2, 2, generator=0)
            self.enc_alias = self.enc

    m = Shared()
    assert [name for name, _ in m.named_children()] == ["enc"] and len(list(m.children())) == 1
    start = m.enc.weight.data.copy()

    def halve(module):
        if isinstance(module, tt.nn.Linear):
            with tt.no_grad():
                module.weight *= 0.5

    m.apply(halve)
    np.testing.assert_array_equal(m.enc.weight.data, start * 0.5)  # not 0.25


def test_a_buffer_shared_by_two_modules_is_listed_once():
    scale = Tensor(np.ones(2))
    parent = Module()
    parent.a, parent.b = Module(), Module()
    parent.a.register_buffer("scale", scale)
    parent.b.register_buffer("scale", scale)
    assert [name for name, _ in parent.named_buffers()] == ["a.scale"]
    for buffer in parent.buffers():
        buffer.mul_(2)
    np.testing.assert_array_equal(scale.data, [2.0, 2.0])


def test_a_buffer_registered_again_as_persistent_is_saved():
    m = Module()
    m.register_buffer("stats", Tensor(np.zeros(2)), persistent=False)
    assert list(m.state_dict()) == []
    m.register_buffer("stats", Tensor(np.zeros(2)), persistent=True)
    assert list(m.state_dict()) == ["stats"]
    m.register_buffer("later", Tensor(np.zeros(1)), persistent=False)
    del m.later
    m.register_buffer("later", Tensor(np.zeros(1)))
    assert list(m.state_dict()) == ["stats", "later"]


@pytest.mark.parametrize("name, message", [
    ("bias", r"Linear already has an attribute 'bias' \(a parameter\)"),
    ("in_features", r"already has an attribute 'in_features' \(a plain attribute\)"),
    ("x.y", "non-empty string without dots"),
    ("", "non-empty string without dots"),
])
def test_a_buffer_cannot_take_a_name_in_use_or_a_dotted_one(name, message):
    layer = tt.nn.Linear(2, 2, generator=0)
    with pytest.raises(KeyError, match=message):
        layer.register_buffer(name, Tensor(np.zeros(2)))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"] and not list(layer.named_buffers())


def test_sequential_from_a_dict_reaches_its_layers_by_name():
    fc = tt.nn.Linear(2, 3, generator=0)
    seq = tt.nn.Sequential(OrderedDict(fc=fc, act=tt.nn.ReLU()))
    assert seq.fc is fc and seq[0] is fc
    with pytest.raises(AttributeError, match="'Sequential' object has no attribute 'nope'"):
        seq.nope  # noqa: B018


def test_a_state_dict_mismatch_is_the_runtime_error_pytorch_code_catches():
    with pytest.raises(RuntimeError, match="missing keys"):
        Two().load_state_dict({"a": np.zeros(3, np.float32)})
    assert issubclass(StateDictError, ValueError)  # what earlier TinyTorch code catches
