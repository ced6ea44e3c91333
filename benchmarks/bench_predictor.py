"""Keypoint predictor on CPU/GPU: extraction ÷ forward (target ≤ 1.15), the layouts and
precisions, SuperPoint-Lite, and SIFT, all timed in this run.

Every method runs on the same real photos (scikit-image samples, grey, resized to 480×640 with
``cv2.INTER_AREA``), interleaved image by image so that background load hits them alike; each
figure is the median over ``--repeats`` of the mean per image:

* forward NCHW: ``model(x)`` on the ready ``(1, 1, 480, 640)`` float tensor, the plain layout;
* forward: the same in the predictor's layout (channels-last on CPU, oneDNN's fast path);
* extraction: ``predictor(image)`` on the uint8 image — conversion, forward, heatmap, NMS,
  border, threshold, top-k, sub-pixel refinement (the default), descriptor sampling, copy to
  NumPy; "integer" is the same with ``subpixel=False``, "bf16" with ``precision="bf16"``;
* lite fp32 / lite bf16: extraction with the SuperPoint-Lite weights (``--lite-weights``,
  default the shipped ``superpoint_lite.pth`` when present);
* SIFT: OpenCV ``SIFT_create(nfeatures=1000).detectAndCompute`` on the same uint8 image.

Wall time and process CPU time (all threads) are both reported: on a loaded machine the wall
time also counts waiting for a core, and ``--threads`` sets torch's and OpenCV's thread count.
The bf16 rows depend on the CPU: with AVX-512 BF16 they are about twice as fast as float32,
on AVX2-only CPUs (bf16 emulated) about six times slower; the header says which this one is.

    python benchmarks/bench_predictor.py [--images 6] [--repeats 5] [--threads N]
        [--max-keypoints 1000] [--device auto] [--weights CKPT] [--lite-weights CKPT]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
from skimage import data as skdata

from pointforge import DEFAULT_WEIGHTS, WEIGHTS_DIR
from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS, to_grey
from pointforge.engine.precision import native_bf16
from pointforge.models.loading import read_state_dict
from pointforge.models.superpoint import SuperPoint
from pointforge.tasks.keypoints.predictor import KeypointPredictor, build_model_for_state_dict

SIZE = (480, 640)  # (h, w)


def load_photos(n: int) -> list[np.ndarray]:
    """The first ``n`` scikit-image photos as ``(480, 640)`` uint8 grey."""
    names = SKIMAGE_PHOTOS[:n]
    return [
        cv2.resize(to_grey(getattr(skdata, name)(), name), SIZE[::-1], interpolation=cv2.INTER_AREA)
        for name in names
    ]


def build_model(weights: str | None) -> tuple[SuperPoint, str]:
    """A SuperPoint with descriptor head, and a line saying where its weights came from."""
    if weights is not None:
        model = build_model_for_state_dict(read_state_dict(weights))
        if not model.has_descriptor:
            raise SystemExit(f"--weights {weights} is detector-only; need a descriptor head")
        return model, f"weights {weights}"
    state = read_state_dict(DEFAULT_WEIGHTS)
    if "convDa.weight" in state:
        return build_model_for_state_dict(state), f"weights {DEFAULT_WEIGHTS.name}"
    torch.manual_seed(0)
    model = SuperPoint(descriptor=True, batchnorm=any(k.startswith("bn") for k in state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("convD", "bnD")) for k in missing)
    return model, (
        f"weights {DEFAULT_WEIGHTS.name} (detector-only): descriptor head randomly initialised "
        "(seed 0) — timing does not depend on its values"
    )


class Clock:
    """Per-call wall and CPU seconds of one method, collected per repeat."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall: list[list[float]] = []
        self.cpu: list[list[float]] = []

    def new_repeat(self) -> None:
        self.wall.append([])
        self.cpu.append([])

    def __call__(self, fn: Callable[[], object]) -> object:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.wall[-1].append(time.perf_counter() - w0)
        self.cpu[-1].append(time.process_time() - c0)
        return out

    def ms(self) -> tuple[float, float]:
        """Median over repeats of the mean per image: (wall ms, CPU ms)."""
        return (
            1000 * statistics.median(statistics.fmean(r) for r in self.wall),
            1000 * statistics.median(statistics.fmean(r) for r in self.cpu),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=6, help=f"1..{len(SKIMAGE_PHOTOS)} photos")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--max-keypoints", type=int, default=1000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", default=None, help="a SuperPoint checkpoint with descriptor head")
    ap.add_argument(
        "--lite-weights",
        default=None,
        help="a SuperPoint-Lite checkpoint (default: the shipped superpoint_lite.pth, if any)",
    )
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)  # the same CPU share for SIFT
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    photos = load_photos(args.images)
    model, source = build_model(args.weights)
    model = model.to(device).eval()
    k = args.max_keypoints
    preds: dict[str, KeypointPredictor] = {
        "extraction": KeypointPredictor(model, device=device, max_keypoints=k),
        "integer": KeypointPredictor(model, device=device, max_keypoints=k, subpixel=False),
        "bf16": KeypointPredictor(model, device=device, max_keypoints=k, precision="bf16"),
    }
    lite_path = args.lite_weights or WEIGHTS_DIR / "superpoint_lite.pth"
    lite_source = "none"
    if args.lite_weights is not None or (WEIGHTS_DIR / "superpoint_lite.pth").is_file():
        lite, lite_source = build_model(str(lite_path))
        preds["lite fp32"] = KeypointPredictor(lite, device=device, max_keypoints=k)
        preds["lite bf16"] = KeypointPredictor(
            lite, device=device, max_keypoints=k, precision="bf16"
        )
    sift = cv2.SIFT_create(nfeatures=k)
    tensors = [torch.from_numpy(p).to(device, torch.float32).div(255)[None, None] for p in photos]
    layout = preds["extraction"]

    def forward_nchw(x: torch.Tensor) -> object:
        with torch.inference_mode():
            return model(x)

    def forward(x: torch.Tensor) -> object:
        if layout.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return layout.model(x)

    names = ["forward NCHW", "forward", *preds, "SIFT"]
    clocks = {name: Clock(device) for name in names}
    counts: dict[str, list[int]] = {name: [] for name in names}

    def run_all(p: np.ndarray, x: torch.Tensor, clocked: bool) -> None:
        timed = {
            "forward NCHW": lambda: forward_nchw(x),
            "forward": lambda: forward(x),
            **{name: (lambda pr=pr: pr(p)) for name, pr in preds.items()},
            "SIFT": lambda: sift.detectAndCompute(p, None),
        }
        for name, fn in timed.items():
            out = clocks[name](fn) if clocked else fn()
            if clocked and name == "SIFT":
                counts[name].append(len(out[0]))  # type: ignore[index]
            elif clocked and name in preds:
                counts[name].append(len(out["keypoints"]))  # type: ignore[index]

    for p, x in zip(photos, tensors):  # warm-up: oneDNN primitives, CUDA kernels, SIFT buffers
        run_all(p, x, clocked=False)
    for _ in range(args.repeats):
        for c in clocks.values():
            c.new_repeat()
        for p, x in zip(photos, tensors):
            run_all(p, x, clocked=True)

    ms = {name: clocks[name].ms() for name in names}
    print(
        f"device {device}, torch {torch.get_num_threads()} threads, OpenCV "
        f"{cv2.getNumThreads()} threads; {len(photos)} photos at {SIZE[0]}×{SIZE[1]}, "
        f"median of {args.repeats} repeats"
    )
    print(
        f"CPU {torch.backends.cpu.get_cpu_capability()}, native bf16: "
        f"{'yes' if native_bf16(device) else 'no (emulated: expect bf16 slower than fp32)'}"
    )
    print(f"model: SuperPoint + descriptor head, {source}; SuperPoint-Lite: {lite_source}")
    print(f"{'':14s}{'wall ms':>10s}{'CPU ms':>10s}{'keypoints':>11s}{'÷ SIFT wall':>13s}")
    sw = ms["SIFT"][0]
    for name in names:
        w, c = ms[name]
        n = f"{statistics.fmean(counts[name]):11.0f}" if counts[name] else " " * 11
        print(f"{name:14s}{w:10.1f}{c:10.1f}{n}{w / sw:13.2f}")

    def ratio(a: str, b: str) -> str:
        return f"wall {ms[a][0] / ms[b][0]:.3f}, CPU time {ms[a][1] / ms[b][1]:.3f}"

    print(f"ratio extraction ÷ forward: {ratio('extraction', 'forward')} (target ≤ 1.15)")
    print(f"ratio sub-pixel ÷ integer extraction: {ratio('extraction', 'integer')}")
    print(f"ratio forward NCHW ÷ predictor layout: {ratio('forward NCHW', 'forward')}")
    print(f"ratio fp32 ÷ bf16 extraction: {ratio('extraction', 'bf16')}")
    print(f"ratio pointforge ÷ SIFT: {ratio('extraction', 'SIFT')}")
    if "lite fp32" in preds:
        print(f"ratio lite fp32 ÷ SIFT: {ratio('lite fp32', 'SIFT')}")
        print(f"ratio lite bf16 ÷ SIFT: {ratio('lite bf16', 'SIFT')}")


if __name__ == "__main__":
    main()
