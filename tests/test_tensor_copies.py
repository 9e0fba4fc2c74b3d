"""Copies of tensors: pickle, ``copy.deepcopy`` and ``copy.copy`` keep what a tensor is (a
subclass's attributes included) and leave behind what belongs to the original (hooks, view links)."""

import copy
import pickle

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Parameter


class TaggedParameter(Parameter):
    """A Parameter subclass with an attribute of its own (weight tying code keeps names so)."""


def _tagged():
    p = TaggedParameter(np.ones(3))
    p.tag = "decoder.weight"
    return p


def test_a_parameter_subclass_keeps_its_class_and_attributes_through_every_copy():
    for copied in (pickle.loads(pickle.dumps(_tagged())), copy.deepcopy(_tagged()), copy.copy(_tagged())):
        assert type(copied) is TaggedParameter and copied.tag == "decoder.weight"
        np.testing.assert_array_equal(copied.data, np.ones(3))


def test_a_tensor_pickled_before_hooks_existed_loads_and_trains():
    """An older pickle's state has no ``_hooks`` slot: ``__setstate__`` fills it in."""
    p = Parameter(np.ones(3))
    attributes, slots = p.__getstate__()
    del slots["_hooks"]
    old = object.__new__(Parameter)
    old.__setstate__((attributes, slots))
    (old * 2).sum().backward()
    np.testing.assert_array_equal(old.grad.data, [2.0, 2.0, 2.0])
    old.register_hook(lambda g: g)


def test_a_computed_tensor_pickles_without_its_hooks():
    x = tt.tensor(np.ones(2), requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 0)  # a lambda: it could not be pickled
    restored = pickle.loads(pickle.dumps(y))
    assert not restored._node._hooks
    restored.sum().backward()
