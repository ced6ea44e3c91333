"""Freeze parameters by name pattern (``model.freeze``), e.g. a pretrained backbone's stem.

A frozen parameter gets ``requires_grad=False`` (so the optimiser never sees it, see
:func:`pointforge.engine.optim.build_optimizer`). A BatchNorm whose parameters are all frozen
is pinned to eval mode: otherwise ``model.train()`` would let it keep updating its running
statistics from training batches, silently changing a layer that is meant to be fixed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _train_frozen(module: _BatchNorm, mode: bool = True) -> _BatchNorm:
    """Replacement ``train`` of a frozen BatchNorm: whatever ``mode`` is asked, stay in eval."""
    del mode
    return nn.Module.train(module, False)


def freeze_by_patterns(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Freeze every parameter whose name matches (``re.search``) one of ``patterns``.

    Returns the frozen parameter names. Raises ``ValueError`` naming the pattern when a pattern
    matches no parameter: a typo there would otherwise quietly train the whole model.
    """
    if not patterns:
        return []
    compiled = [re.compile(p) for p in patterns]
    hits = [0] * len(compiled)
    frozen = []
    for name, param in model.named_parameters():
        matched = [i for i, rx in enumerate(compiled) if rx.search(name)]
        for i in matched:
            hits[i] += 1
        if matched:
            param.requires_grad_(False)
            frozen.append(name)
    unused = [patterns[i] for i, n in enumerate(hits) if n == 0]
    if unused:
        names = [n for n, _ in model.named_parameters()]
        raise ValueError(
            f"config key 'model.freeze': pattern(s) {unused} match no parameter; "
            f"parameter names look like {names[:6]}"
        )
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, _BatchNorm) and params and not any(p.requires_grad for p in params):
            # An instance attribute shadows nn.Module.train for this module only; a partial
            # of a module-level function keeps the model picklable and deep-copyable.
            module.train = functools.partial(_train_frozen, module)  # type: ignore[method-assign]
            module.train(False)
    return frozen
