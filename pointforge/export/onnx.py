"""Export a SuperPoint / MagicPoint network to ONNX and check it against PyTorch.

What goes into the graph: the network plus the dense, shape-static part of post-processing,
i.e. softmax over the 65 classes, dropping the dustbin and depth-to-space to a full-resolution
heatmap (:func:`~pointforge.tasks.keypoints.postprocess.logits_to_heatmap`), and the descriptor
map that the model already L2-normalises. What stays outside: NMS, thresholding, top-k and
descriptor sampling. Their output sizes depend on the image content (how many points survive),
and data-dependent shapes are where ONNX runtimes differ most (``NonZero``/``TopK`` with a
dynamic k, padded vs ragged outputs); a fixed-shape graph runs the same everywhere, and the
remaining steps are a few lines of NumPy on the consumer's side.

Exporters (torch 2.14):

* ``"dynamo"`` (default): ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based
  exporter. It needs the ``onnx`` and ``onnxscript`` packages and emits opset >= 18 only: a
  lower ``opset_version`` is not converted (onnx's version converter fails on this graph and
  the exporter silently keeps 18), so we refuse it instead.
* ``"torchscript"``: the legacy tracer (``dynamo=False``), deprecated in torch but still
  working in 2.14.1 and exporting in well under a second; use it for runtimes that need
  opset 11–17.

Both were checked against onnxruntime to ~1e-7 (heatmap and descriptors) at fixed and dynamic
sizes. Dynamic exports make batch, height and width symbolic; H and W must still be multiples
of 8 (the stride), at least 16.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointforge.engine.checkpoint import atomic_write_bytes
from pointforge.models.superpoint import CELL, SuperPoint
from pointforge.tasks.keypoints.postprocess import logits_to_heatmap
from pointforge.tasks.keypoints.predictor import MIN_SIDE

DEFAULT_OPSET = 18
MIN_DYNAMO_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")
# The dynamo exporter's optimiser logs every rewrite at INFO; the CLI's root logger shows INFO.
CHATTY_LOGGERS = ("onnxscript", "onnx_ir")
INPUT_NAME = "image"


class OnnxVerificationError(RuntimeError):
    """An ONNX output differs from PyTorch by more than the tolerance; the message names it."""


class KeypointGraph(nn.Module):
    """The exported graph: ``image (B, 1, H, W)`` float32 in [0, 1] → dense outputs.

    Returns a tuple in :attr:`output_names` order: ``heatmap (B, H, W)`` keypoint probability
    and, when the model has a descriptor head, ``descriptors (B, D, H/8, W/8)`` (unit norm
    over D). A tuple, not a dict, so that both exporters name the outputs the same way.
    """

    def __init__(self, model: SuperPoint) -> None:
        super().__init__()
        self.model = model
        self.output_names: tuple[str, ...] = (
            ("heatmap", "descriptors") if model.has_descriptor else ("heatmap",)
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        heatmap = logits_to_heatmap(out["logits"])
        if self.model.has_descriptor:
            return heatmap, out["descriptors"]
        return (heatmap,)


def check_size(height: int, width: int) -> None:
    """Refuse sizes the network cannot take: H, W multiples of 8 and >= 16."""
    for name, value in (("height", height), ("width", width)):
        if value < MIN_SIDE or value % CELL:
            raise ValueError(f"{name} must be a multiple of {CELL} and >= {MIN_SIDE}, got {value}")


def _check_out_path(out_path: Path) -> None:
    """Fail before the (seconds-long) export if ``out_path`` cannot be written.

    Only the file's own folder is created, and only inside an existing folder that is not the
    filesystem root: ``--out runs/sp.onnx`` makes ``runs/``, while a mistyped
    ``/nonexistent/x.onnx`` or a missing chain ``a/b/c/x.onnx`` is named instead of being
    created (it once made a new folder at the root of the filesystem).
    """
    if out_path.is_dir():
        raise IsADirectoryError(f"cannot write ONNX file {out_path}: it is a directory")
    folder = out_path.parent
    ancestors = [folder, *folder.parents]
    for above in ancestors[1:]:
        if above.exists() and not above.is_dir():
            raise NotADirectoryError(
                f"cannot write ONNX file {out_path}: a parent of it is a file, not a folder"
            )
    if not folder.exists():
        if folder.is_symlink():  # a dangling link
            raise NotADirectoryError(
                f"cannot write ONNX file {out_path}: {folder} is a broken link"
            )
        grand = folder.parent
        if not grand.is_dir() or grand.resolve() == Path(grand.resolve().anchor):
            missing = next(a for a in reversed(ancestors) if not a.exists())
            raise FileNotFoundError(
                f"cannot write ONNX file {out_path}: folder {missing} does not exist (only the "
                "file's own folder is created, inside an existing folder other than the "
                "filesystem root; create it first)"
            )
        try:
            folder.mkdir()
        except OSError as exc:
            raise OSError(
                f"cannot write ONNX file {out_path}: cannot create its folder ({exc.strerror})"
            ) from None
    elif not folder.is_dir():
        raise NotADirectoryError(
            f"cannot write ONNX file {out_path}: a parent of it is a file, not a folder"
        )
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write ONNX file {out_path}: folder is not writable")


def check_input_size(session, images_shape: Sequence[int], path: str | Path) -> None:
    """Refuse ``images_shape`` ``(B, 1, H, W)`` that the ONNX file's input does not take.

    A fixed export takes exactly its export size; onnxruntime says so only as "Got invalid
    dimensions for input: image for the following indices index: 2 Got: 240 Expected: 480".
    Symbolic dimensions (``--dynamic``) accept any size (H, W multiples of 8, >= 16).
    """
    dims = list(session.get_inputs()[0].shape)
    got = tuple(int(v) for v in images_shape)
    fixed = [d if isinstance(d, int) else None for d in dims]
    if len(fixed) != len(got) or any(d is not None and d != g for d, g in zip(fixed, got)):
        want = "x".join(str(d) if d is not None else "any" for d in fixed)
        hint = ""
        if len(fixed) == 4 and fixed[2] is not None and fixed[3] is not None:
            hint = (
                f": it was exported at a fixed {fixed[2]}x{fixed[3]} (H x W); resize the input "
                "to that, or export again with --dynamic"
            )
        raise ValueError(
            f"ONNX file {path} takes input {want} (B x C x H x W), got "
            f"{'x'.join(map(str, got))}{hint}"
        )
    if len(fixed) == 4 and None in fixed[2:]:
        check_size(got[2], got[3])


def _graph(model: SuperPoint) -> KeypointGraph:
    # A CPU copy in eval mode: the caller's model keeps its device and train/eval state.
    return KeypointGraph(copy.deepcopy(model).cpu().eval()).eval()


def _io_dims(graph: KeypointGraph, dynamic: bool, height: int, width: int) -> dict[str, list]:
    """Per graph input/output, the dim of each axis: an int, or a symbolic name if dynamic."""
    b, h, w = ("batch", "height", "width") if dynamic else (1, height, width)
    hc, wc = ("height/8", "width/8") if dynamic else (height // CELL, width // CELL)
    dims: dict[str, list] = {INPUT_NAME: [b, 1, h, w], "heatmap": [b, h, w]}
    if graph.model.has_descriptor:
        dims["descriptors"] = [b, graph.model.convDb.out_channels, hc, wc]
    return dims


def _name_dims(proto, dims: dict[str, list]) -> None:
    """Give the graph's inputs/outputs readable symbolic dims (``height``, not ``8*s69``)."""
    for value in [*proto.graph.input, *proto.graph.output]:
        if value.name not in dims:
            continue
        for dim, want in zip(value.type.tensor_type.shape.dim, dims[value.name]):
            if isinstance(want, str):
                dim.dim_param = want
            else:
                dim.dim_value = want


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given loggers (default: the dynamo exporter's chatty ones) to WARNING for the
    duration, then restore their levels. Every family's ONNX export uses it."""
    names = names or CHATTY_LOGGERS
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise RuntimeError(
            "ONNX export needs the onnx package: pip install 'pointforge[onnx]'"
        ) from None
    return onnx


def _export_dynamo(graph: KeypointGraph, example: torch.Tensor, dynamic: bool, opset: int) -> bytes:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's translator)
    except ImportError:
        raise RuntimeError(
            "the dynamo ONNX exporter needs onnx and onnxscript: pip install 'pointforge[onnx]' "
            "(or pass exporter='torchscript')"
        ) from None
    shapes = None
    if dynamic:
        # H = 8·k keeps the stride-8 constraint visible to torch.export (no guard on H % 8).
        cells_h = torch.export.Dim("height_cells", min=MIN_SIDE // CELL)
        cells_w = torch.export.Dim("width_cells", min=MIN_SIDE // CELL)
        batch = torch.export.Dim("batch", min=1)
        shapes = {INPUT_NAME: {0: batch, 2: CELL * cells_h, 3: CELL * cells_w}}
    with quiet_loggers():
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(graph.output_names),
            opset_version=opset,
            dynamic_shapes=shapes,
            verbose=False,
        )
    if program is None:  # only the legacy exporter (dynamo=False) returns None
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
    return program.model_proto.SerializeToString()


def _export_torchscript(
    graph: KeypointGraph, example: torch.Tensor, dynamic: bool, opset: int
) -> bytes:
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        axes["heatmap"] = {0: "batch", 1: "height", 2: "width"}
        if "descriptors" in graph.output_names:
            axes["descriptors"] = {0: "batch", 2: "height/8", 3: "width/8"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # Deprecation of this exporter, and tracer warnings on the model's input checks
        # (shape asserts that the trace drops; they hold for every valid input).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            graph,
            (example,),
            # torch annotates f as a path, but this (legacy) exporter also writes to file objects.
            buf,  # type: ignore[arg-type]
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=list(graph.output_names),
            opset_version=opset,
            dynamic_axes=axes,
        )
    return buf.getvalue()


def export_onnx(
    model: SuperPoint,
    out_path: str | Path,
    height: int = 480,
    width: int = 640,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    exporter: str = "dynamo",
) -> Path:
    """Write ``model`` as an ONNX graph (see :class:`KeypointGraph`) to ``out_path``.

    ``height``/``width`` are the input size of a fixed export, and the example size of a
    dynamic one (``dynamic=True``: batch, H and W symbolic). The file is written atomically
    (temp file in the same folder, then rename), so a crash never leaves a partial model.
    Returns the path.
    """
    check_size(height, width)
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown ONNX exporter {exporter!r}; choose one of {EXPORTERS}")
    if exporter == "dynamo" and opset < MIN_DYNAMO_OPSET:
        raise ValueError(
            f"opset {opset} < {MIN_DYNAMO_OPSET}: the dynamo exporter emits opset >= "
            f"{MIN_DYNAMO_OPSET} only; use exporter='torchscript' (--exporter torchscript) "
            "for older runtimes"
        )
    out_path = Path(out_path)
    _check_out_path(out_path)
    graph = _graph(model)
    # Batch 2 for dynamic exports, so that no exporter can specialise the batch axis to 1.
    example = torch.rand(2 if dynamic else 1, 1, height, width)
    export = _export_dynamo if exporter == "dynamo" else _export_torchscript
    data = export(graph, example, dynamic, opset)

    onnx = _import_onnx()
    proto = onnx.load_from_string(data)
    _name_dims(proto, _io_dims(graph, dynamic, height, width))
    onnx.checker.check_model(proto)
    atomic_write_bytes(proto.SerializeToString(), out_path)
    return out_path


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``path`` (``threads``: intra-op threads, None = ORT's)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeError("onnxruntime is not installed: pip install 'pointforge[onnx]'") from None
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_onnx(
    path: str | Path,
    model: SuperPoint,
    images: torch.Tensor,
    atol: float = 1e-4,
) -> dict[str, float]:
    """Max absolute difference per output between onnxruntime and PyTorch on ``images``.

    ``images``: ``(B, 1, H, W)`` float in [0, 1] (a size the export accepts). Returns
    ``{"heatmap": diff, "descriptors": diff}`` (descriptors only for SuperPoint). Raises
    :class:`OnnxVerificationError` naming the first output whose difference exceeds ``atol``,
    and ``ValueError`` if the ONNX file's outputs are not the model's.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W), got {tuple(images.shape)}")
    graph = _graph(model)
    session = onnx_session(path)
    names: Sequence[str] = [o.name for o in session.get_outputs()]
    if tuple(names) != graph.output_names:
        raise ValueError(
            f"ONNX file {path} has outputs {list(names)}, the model has {list(graph.output_names)}"
        )
    x = images.detach().float().cpu()
    check_input_size(session, x.shape, path)
    got = session.run(list(names), {INPUT_NAME: x.numpy()})
    with torch.no_grad():
        want = graph(x)
    diffs: dict[str, float] = {}
    for name, a, b in zip(names, got, want):
        if a.shape != tuple(b.shape):
            raise OnnxVerificationError(
                f"ONNX output {name!r} has shape {a.shape}, PyTorch {tuple(b.shape)} "
                f"(input {tuple(x.shape)}, {path})"
            )
        diffs[name] = float(np.abs(a - b.numpy()).max())
    for name, diff in diffs.items():
        if not diff <= atol:  # also catches NaN
            raise OnnxVerificationError(
                f"ONNX output {name!r} differs from PyTorch by {diff:.3g} > atol {atol:g} "
                f"(input {tuple(x.shape)}, {path})"
            )
    return diffs
