"""Keypoint predictor: full extraction ÷ network forward alone (target ≤ 1.15), and vs SIFT.

All three are timed in this run on the same real photos (scikit-image samples, grey, resized to
480×640 with ``cv2.INTER_AREA``), interleaved image by image so that background load hits them
alike; each figure is the median over ``--repeats`` of the mean per image:

* forward: ``model(x)`` under ``inference_mode`` on the ready ``(1, 1, 480, 640)`` float tensor;
* extraction: ``predictor(image)`` on the uint8 image — conversion, forward, heatmap, NMS,
  border, threshold, top-k, sub-pixel refinement (the default), descriptor sampling, copy to
  NumPy;
* integer: the same predictor with ``subpixel=False`` (the cost of the refinement);
* SIFT: OpenCV ``SIFT_create(nfeatures=1000).detectAndCompute`` on the same uint8 image.

Wall time and process CPU time (all threads) are both reported: on a loaded machine the wall
time also counts waiting for a core, and ``--threads`` sets torch's and OpenCV's thread count.
The shipped default weights are detector-only; then the descriptor head is randomly initialised
(timing does not depend on its values), or pass ``--weights`` for a full SuperPoint checkpoint.

    python benchmarks/bench_predictor.py [--images 6] [--repeats 5] [--threads N]
        [--max-keypoints 1000] [--device auto] [--weights CKPT]
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

from pointforge import DEFAULT_WEIGHTS
from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS, to_grey
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
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)  # the same CPU share for SIFT
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    photos = load_photos(args.images)
    model, source = build_model(args.weights)
    pred = KeypointPredictor(model, device=device, max_keypoints=args.max_keypoints)
    integer = KeypointPredictor(
        model, device=device, max_keypoints=args.max_keypoints, subpixel=False
    )
    sift = cv2.SIFT_create(nfeatures=args.max_keypoints)
    tensors = [torch.from_numpy(p).to(device, torch.float32).div(255)[None, None] for p in photos]

    def forward(x: torch.Tensor) -> object:
        with torch.inference_mode():
            return model(x)

    clocks = {name: Clock(device) for name in ("forward", "extraction", "integer", "sift")}
    counts: list[int] = []
    sift_counts: list[int] = []
    for p, x in zip(photos, tensors):  # warm-up: oneDNN primitives, CUDA kernels, SIFT buffers
        forward(x), pred(p), integer(p), sift.detectAndCompute(p, None)
    for _ in range(args.repeats):
        for c in clocks.values():
            c.new_repeat()
        for p, x in zip(photos, tensors):
            clocks["forward"](lambda x=x: forward(x))
            out = clocks["extraction"](lambda p=p: pred(p))
            clocks["integer"](lambda p=p: integer(p))
            kp, _ = clocks["sift"](lambda p=p: sift.detectAndCompute(p, None))
            counts.append(len(out["keypoints"]))
            sift_counts.append(len(kp))

    (fw, fc), (ew, ec), (iw, ic), (sw, sc) = (
        clocks[k].ms() for k in ("forward", "extraction", "integer", "sift")
    )
    print(
        f"device {device}, torch {torch.get_num_threads()} threads, OpenCV "
        f"{cv2.getNumThreads()} threads; {len(photos)} photos at {SIZE[0]}×{SIZE[1]}, "
        f"median of {args.repeats} repeats"
    )
    print(f"model: SuperPoint + descriptor head, {source}")
    print(f"{'':12s}{'wall ms':>10s}{'CPU ms':>10s}{'keypoints':>11s}")
    print(f"{'forward':12s}{fw:10.1f}{fc:10.1f}")
    print(f"{'extraction':12s}{ew:10.1f}{ec:10.1f}{statistics.fmean(counts):11.0f}")
    print(f"{'integer':12s}{iw:10.1f}{ic:10.1f}")
    print(f"{'SIFT':12s}{sw:10.1f}{sc:10.1f}{statistics.fmean(sift_counts):11.0f}")
    print(f"ratio sub-pixel ÷ integer extraction: wall {ew / iw:.3f}, CPU time {ec / ic:.3f}")
    print(f"ratio extraction ÷ forward: wall {ew / fw:.3f}, CPU time {ec / fc:.3f} (target ≤ 1.15)")
    print(f"ratio pointforge ÷ SIFT: wall {ew / sw:.2f}, CPU time {ec / sc:.2f}")


if __name__ == "__main__":
    main()
