"""PyTorch's ModuleDict and the registration and lookup calls of Module: add_module,
register_module, register_parameter, get_submodule, get_parameter, half()."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Module, ModuleDict, Parameter


def test_a_module_dict_registers_its_modules_by_name():
    layers = ModuleDict({"encoder": tt.nn.Linear(2, 3, generator=0), "train": tt.nn.Linear(3, 1, generator=1)})
    layers["act"] = tt.nn.ReLU()
    assert list(layers) == ["encoder", "train", "act"] and len(layers) == 3 and "act" in layers
    assert list(layers.state_dict()) == ["encoder.weight", "encoder.bias", "train.weight", "train.bias"]
    assert layers.encoder is layers["encoder"] and callable(layers.train)  # the key does not hide the method
    layers.eval()
    assert not layers["encoder"].training
    assert isinstance(layers.pop("act"), tt.nn.ReLU) and list(layers.keys()) == ["encoder", "train"]
    with pytest.raises(KeyError, match="ModuleDict has no module 'act'"):
        layers["act"]  # noqa: B018
    with pytest.raises(TypeError, match="ModuleDict holds Modules, got int"):
        layers["x"] = 3
    with pytest.raises(KeyError, match="without dots"):
        layers["a.b"] = tt.nn.ReLU()
    layers.clear()
    assert len(layers) == 0 and not list(layers.parameters())


def test_add_module_register_parameter_and_lookups_by_path():
    model = Module()
    model.add_module("block", Module())
    model.block.register_module("fc", tt.nn.Linear(2, 2, generator=0))
    model.register_parameter("scale", Parameter(np.ones(1, np.float32)))
    assert [name for name, _ in model.named_parameters()] == ["scale", "block.fc.weight", "block.fc.bias"]
    assert model.get_submodule("block.fc") is model.block.fc and model.get_submodule("") is model
    assert model.get_parameter("block.fc.bias") is model.block.fc.bias and model.get_parameter("scale") is model.scale
    with pytest.raises(AttributeError, match="has no sub-module 'nope'"):
        model.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="has no parameter 'nope'"):
        model.get_parameter("block.fc.nope")
    with pytest.raises(TypeError, match="expected a Parameter or None"):
        model.register_parameter("w", tt.Tensor(np.ones(1)))
    with pytest.raises(KeyError, match="without dots"):
        model.add_module("a.b", Module())


def test_half_casts_the_parameters_to_float16():
    layer = tt.nn.Linear(2, 2, generator=0).half()
    assert layer.weight.dtype == np.float16 and layer.bias.dtype == np.float16


def test_a_module_dict_key_set_as_an_attribute_then_as_an_item_holds_one_module():
    """md.head = A; md["head"] = B left md.head reading A while parameters() held B's."""
    first, second = tt.nn.Linear(2, 2, generator=0), tt.nn.Linear(2, 2, generator=1)
    layers = ModuleDict()
    layers.head = first
    layers["head"] = second
    assert layers.head is second and layers["head"] is second
    assert {id(p) for p in layers.parameters()} == {id(second.weight), id(second.bias)}
    del layers["head"]
    assert "head" not in layers and not hasattr(layers, "head")
    assert list(ModuleDict(ModuleDict({"a": tt.nn.ReLU()}))) == ["a"]


def test_a_sequential_with_a_layer_set_to_none_indexes_and_slices_the_layers_that_run():
    seq = tt.nn.Sequential(tt.nn.Linear(2, 2, generator=0), tt.nn.ReLU(), tt.nn.Linear(2, 2, generator=1))
    setattr(seq, "1", None)
    last = tt.nn.Linear(2, 2, generator=2)
    seq[1] = last  # the second layer that runs: "2"
    assert seq[1] is last and seq._modules["2"] is last and len(seq[0:2]) == 2


def test_a_property_that_fails_reports_its_own_missing_attribute():
    class Broken(Module):
        @property
        def size_hint(self):
            return self.not_there

    with pytest.raises(AttributeError, match="not_there"):
        Broken().size_hint  # noqa: B018


def test_from_numpy_refuses_array_subclasses():
    with pytest.raises(TypeError, match="from_numpy: expected a NumPy array, got MaskedArray"):
        tt.from_numpy(np.ma.array(np.ones(2), mask=[False, True]))  # its mask would be ignored
