"""Model summary: per-layer output shape, parameters and FLOPs for one input size.

Why measure instead of derive: output shapes come from forward hooks on a real forward pass and
FLOPs from :class:`torch.utils.flop_counter.FlopCounterMode` (which counts a multiply-add as 2
FLOPs, e.g. a 3×3 conv is ``2·C_in·C_out·9·H_out·W_out``), so the table is right for any
architecture without hand-written per-layer formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class LayerRow:
    """One leaf module (or a module owning parameters directly)."""

    name: str
    type: str
    # Output shape of the module's first call; None if the forward never called it.
    output_shape: tuple[int, ...] | None
    params: int
    flops: int
    calls: int


@dataclass
class ModelSummary:
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    flops: int

    def table(self) -> str:
        """Fixed-width text table, then the totals."""
        head = ("layer", "type", "output shape", "params", "FLOPs")
        cells = [
            (
                r.name + (f" (x{r.calls})" if r.calls > 1 else ""),
                r.type,
                str(list(r.output_shape)) if r.output_shape is not None else "(not called)",
                f"{r.params:,}",
                human(r.flops) if r.flops else "-",
            )
            for r in self.rows
        ]
        widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]

        def fmt(c: tuple[str, ...]) -> str:
            left = "  ".join(c[i].ljust(widths[i]) for i in range(3))
            return f"{left}  {c[3].rjust(widths[3])}  {c[4].rjust(widths[4])}"

        lines = [fmt(head), "-" * len(fmt(head)), *(fmt(c) for c in cells)]
        lines += [
            "-" * len(fmt(head)),
            f"input {list(self.input_shape)}",
            f"total params {self.total_params:,}  trainable {self.trainable_params:,}",
            f"FLOPs {self.flops:,} ({human(self.flops)}, multiply-add = 2)",
        ]
        return "\n".join(lines)


def human(n: float) -> str:
    """``3040204800`` → ``"3.04G"``."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def input_channels(model: nn.Module) -> int:
    """Channels the model expects: ``in_channels`` of its first convolution."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    raise ValueError(
        f"{type(model).__name__} has no convolution to read the input channels from; "
        "pass the input shape explicitly"
    )


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> ModelSummary:
    """Run one forward of a seeded random ``input_shape`` batch (e.g. ``(1, 1, 120, 160)``).

    The model runs in eval mode without autograd (BatchNorm statistics are not touched) and its
    train/eval mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(input_shape, generator=gen, dtype=dtype).to(device)

    named = dict(model.named_modules())
    # Leaves, plus containers that own parameters directly (they would be missed otherwise).
    shown = [
        n for n, m in named.items() if not any(m.children()) or any(m.parameters(recurse=False))
    ]
    shapes: dict[str, tuple[int, ...] | None] = {n: None for n in shown}
    calls = dict.fromkeys(shown, 0)

    def make_hook(name: str):
        def hook(_m: nn.Module, _inp: object, out: object) -> None:
            calls[name] += 1
            if calls[name] == 1 and isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape)

        return hook

    handles = [named[n].register_forward_hook(make_hook(n)) for n in shown]
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    root = type(model).__name__
    per_module: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == root:
            per_module[""] = int(sum(ops.values()))
        elif key.startswith(root + "."):
            per_module[key[len(root) + 1 :]] = int(sum(ops.values()))
    rows = [
        LayerRow(
            name=n or "(root)",
            type=type(named[n]).__name__,
            output_shape=shapes[n],
            params=sum(p.numel() for p in named[n].parameters(recurse=False)),
            flops=per_module.get(n, 0),
            calls=calls[n],
        )
        for n in shown
    ]
    params = {id(p): p for p in model.parameters()}.values()  # shared weights counted once
    return ModelSummary(
        input_shape=tuple(input_shape),
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        flops=int(counter.get_total_flops()),
    )
