"""ONNX export: export time, ONNX-vs-PyTorch differences, onnxruntime vs PyTorch CPU latency.

For the shipped weights (or ``--weights``) at ``--size`` (default 480x640): exports a fixed and
a dynamic model with each requested exporter, verifies both against PyTorch (the dynamic one
also at 240x320, batch 2), then times the same graph (network + heatmap, + descriptors for
SuperPoint) in PyTorch (``torch.no_grad``) and in onnxruntime's CPU provider with the same
number of threads, reporting the median of ``--repeats`` interleaved runs after one warm-up.

    python benchmarks/bench_onnx.py [--weights CKPT] [--size 480 640] [--threads 2]
        [--repeats 10] [--exporters dynamo torchscript]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pointforge import DEFAULT_WEIGHTS
from pointforge.export.onnx import KeypointGraph, export_onnx, onnx_session, verify_onnx
from pointforge.tasks.keypoints.predictor import (
    build_model_for_state_dict,
    load_state_dict_from_file,
)


def interleaved_median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms per function, the functions timed in turn within each repeat.

    Interleaving makes the comparison fair on a shared machine: a load spike from another
    process hits every contender in the same repeat instead of one whole phase.
    """
    for fn in fns.values():
        fn()  # warm-up (allocations, oneDNN/ORT kernel selection)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--exporters", nargs="+", default=["dynamo", "torchscript"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = args.size
    model = build_model_for_state_dict(load_state_dict_from_file(args.weights)).eval()
    image = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(0))
    print(f"weights {args.weights}, {h}x{w}, {args.threads} threads, torch {torch.__version__}")

    with tempfile.TemporaryDirectory() as tmp:
        fixed_paths = {}
        for exporter in args.exporters:
            for dynamic in (False, True):
                path = Path(tmp) / f"{exporter}_{'dyn' if dynamic else 'fixed'}.onnx"
                start = time.perf_counter()
                export_onnx(model, path, h, w, dynamic=dynamic, exporter=exporter)
                secs = time.perf_counter() - start
                diffs = verify_onnx(path, model, image)
                line = ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
                if dynamic:
                    second = torch.rand(2, 1, 240, 320, generator=torch.Generator().manual_seed(1))
                    d2 = verify_onnx(path, model, second)
                    line += " | at 2x1x240x320: " + ", ".join(f"{k} {v:.2g}" for k, v in d2.items())
                kind = "dynamic" if dynamic else "fixed"
                print(f"export {exporter:11s} {kind:7s} {secs:6.2f} s  max|diff| {line}")
                if not dynamic:
                    fixed_paths[exporter] = path

        graph = KeypointGraph(model).eval()
        feed = {"image": image.numpy()}
        fns: dict[str, Callable[[], object]] = {"PyTorch": lambda: graph(image)}
        for exporter, path in fixed_paths.items():
            session = onnx_session(path, threads=args.threads)
            fns[f"onnxruntime ({exporter} export)"] = lambda s=session: s.run(None, feed)
        with torch.no_grad():
            ms = interleaved_median_ms(fns, args.repeats)
        base = ms["PyTorch"]
        for name, t in ms.items():
            print(f"{name:34s} median {t:7.1f} ms  = {t / base:.2f}x PyTorch (network + heatmap)")


if __name__ == "__main__":
    main()
