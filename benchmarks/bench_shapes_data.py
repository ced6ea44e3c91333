"""Synthetic Shapes throughput per CPU core (docs/benchmarks.md target ≥ 400 augmented samples/s).

Single process, one thread, so the figure is per core. Prints render-only, render +
photometric, and full training samples (render + homography + photometric) at 120×160, with
ratios to the target and to the public renderer's 22.7 samples/s/core reference.

    python benchmarks/bench_shapes_data.py [--num 500]
"""

from __future__ import annotations

import argparse
import time

import cv2
import torch

from pointforge.data.datasets.synthetic_shapes import SyntheticShapes
from pointforge.data.transforms.photometric import PhotometricConfig
from pointforge.geometry.homography import HomographyConfig

TARGET, REFERENCE = 400.0, 22.7


def rate(ds: SyntheticShapes, num: int) -> float:
    ds[0]  # warm-up
    t0 = time.perf_counter()
    for i in range(1, num + 1):
        ds[i]
    return num / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--num", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    variants = {
        "render only": SyntheticShapes("train"),
        "render + photometric": SyntheticShapes("train", photometric=PhotometricConfig()),
        "full (render + homography + photometric)": SyntheticShapes(
            "train", photometric=PhotometricConfig(), homographic=HomographyConfig()
        ),
    }
    print(f"{'variant':<44}{'samples/s/core':>16}{'÷ target 400':>14}{'÷ ref 22.7':>12}")
    for name, ds in variants.items():
        r = rate(ds, args.num)
        print(f"{name:<44}{r:>16.1f}{r / TARGET:>14.2f}{r / REFERENCE:>12.1f}")


if __name__ == "__main__":
    main()
