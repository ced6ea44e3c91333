"""Capture named intermediate features and their gradients, with hooks removed on exit.

Why a context manager: forward hooks left registered keep tensors alive and slow every later
forward pass; tying their lifetime to a ``with`` block makes that impossible to forget. Used by
Grad-CAM (:mod:`pointforge.explain`) and handy for debugging ("what does ``layer3`` output?").

Features are the module *outputs*; gradients are d(loss)/d(output), captured by a tensor hook
on that output (so an in-place op after the module, like ``relu_``, does not break it: a tensor
hook registered before an in-place change receives the gradient of the pre-change value).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from pointforge.registry import did_you_mean


class FeatureCapture:
    """What a :func:`capture` block recorded, by module name.

    A module called several times in one forward (a shared ``ReLU``) gets one entry per call in
    :attr:`all_features` / :attr:`all_grads`; :attr:`features` and :attr:`grads` give the last
    call, which is what one usually means.
    """

    def __init__(self, clone: bool) -> None:
        self.clone = clone
        self.all_features: dict[str, list[torch.Tensor]] = {}
        # Index = call number, matching all_features; None until backward reaches it.
        self.all_grads: dict[str, list[torch.Tensor | None]] = {}

    @property
    def features(self) -> dict[str, torch.Tensor]:
        """Output of each captured module's last call (detached)."""
        return {name: calls[-1] for name, calls in self.all_features.items()}

    @property
    def grads(self) -> dict[str, torch.Tensor]:
        """Gradient w.r.t. each captured module's last-call output, once backward has run."""
        return {name: calls[-1] for name, calls in self.all_grads.items() if calls[-1] is not None}

    def _on_forward(self, name: str, output: Any, want_feature: bool, want_grad: bool) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"capture: module '{name}' returned {type(output).__name__}; only modules "
                "returning a single tensor can be captured (pick a sub-module)"
            )
        if want_feature:
            value = output.detach()
            # Clone so that an in-place op after the module (relu_) cannot change the record.
            self.all_features.setdefault(name, []).append(value.clone() if self.clone else value)
        if want_grad:
            grads = self.all_grads.setdefault(name, [])
            index = len(grads)
            grads.append(None)
            if output.requires_grad:

                def store(grad: torch.Tensor, name: str = name, index: int = index) -> None:
                    self.all_grads[name][index] = grad.detach()

                output.register_hook(store)


def _check_names(model: nn.Module, names: Sequence[str]) -> None:
    known = dict(model.named_modules())
    for name in names:
        if name not in known:
            candidates = [n for n in known if n]
            listed = ", ".join(candidates[:20]) + (" ..." if len(candidates) > 20 else "")
            raise ValueError(
                f"no module named '{name}' in {type(model).__name__}."
                f"{did_you_mean(name, candidates)} Modules: {listed}"
            )


@contextmanager
def capture(
    model: nn.Module,
    features: Sequence[str] = (),
    grads: Sequence[str] = (),
    clone: bool = True,
) -> Iterator[FeatureCapture]:
    """Record outputs of the modules named in ``features`` and output gradients for ``grads``.

    Names are those of ``model.named_modules()`` (``"layer4"``, ``"layer4.1.conv2"``). Gradients
    are only recorded when the forward runs with autograd on; call ``backward`` inside the block
    or after it (the tensor hooks outlive the block, the module hooks do not).
    """
    _check_names(model, [*features, *grads])
    rec = FeatureCapture(clone)
    modules = dict(model.named_modules())
    handles = []
    for name in dict.fromkeys([*features, *grads]):
        want_f, want_g = name in features, name in grads

        def hook(
            _m: nn.Module, _inp: Any, out: Any, name: str = name, f: bool = want_f, g: bool = want_g
        ) -> None:
            rec._on_forward(name, out, f, g)

        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()
