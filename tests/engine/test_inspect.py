"""Feature/gradient capture: values equal a manual computation; hooks are gone afterwards."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.engine.inspect import capture


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    # In-place ReLU right after the captured conv: the record must hold the pre-ReLU values.
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(3, 1, 1))


def test_features_and_grads_match_manual_autograd() -> None:
    net = small_net()
    x = torch.randn(2, 2, 5, 6)
    with capture(net, features=["0", "2"], grads=["0"]) as rec:
        loss = (net(x) ** 2).sum()
        loss.backward()
    conv0, conv2 = net[0], net[2]
    y0 = F.conv2d(x, conv0.weight, conv0.bias, padding=1).detach().requires_grad_(True)
    out = F.conv2d(F.relu(y0), conv2.weight, conv2.bias)
    (out**2).sum().backward()
    assert rec.features["0"].shape == (2, 3, 5, 6)
    assert (rec.features["0"] < 0).any()  # not overwritten by the in-place ReLU
    torch.testing.assert_close(rec.features["0"], y0.detach())
    torch.testing.assert_close(rec.features["2"], out.detach())
    torch.testing.assert_close(rec.grads["0"], y0.grad)
    assert "2" not in rec.grads  # only requested gradients are kept


def test_hooks_are_removed_on_exit_even_after_an_error() -> None:
    net = small_net()
    with pytest.raises(RuntimeError, match="boom"), capture(net, features=["0"], grads=["2"]):
        raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in net.modules())
    with capture(net, features=["0"]) as rec:
        pass
    net(torch.zeros(1, 2, 4, 4))
    assert rec.all_features == {}  # a forward after the block records nothing


def test_repeated_module_keeps_every_call_and_no_grad_skips_grads() -> None:
    relu = nn.ReLU()
    net = nn.Sequential(nn.Linear(3, 3), relu, nn.Linear(3, 3), relu)
    x = torch.randn(4, 3)
    with torch.no_grad(), capture(net, features=["1"], grads=["1"]) as rec:
        out = net(x)
    assert len(rec.all_features["1"]) == 2
    torch.testing.assert_close(rec.features["1"], out)
    assert rec.grads == {}


def test_unknown_module_name_is_named_with_a_suggestion() -> None:
    with pytest.raises(ValueError, match=r"no module named 'layer4'.*Modules: 0, 1, 2"):
        capture(small_net(), features=["layer4"]).__enter__()
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 1, 1), act=nn.ReLU()))
    with pytest.raises(ValueError, match="Did you mean 'conv'"):
        capture(named, grads=["con"]).__enter__()
