"""Homographic adaptation: export time ÷ the same forward passes alone (docs/benchmarks.md ≤ 1.3).

Both are measured in this run on the same photos (scikit-image samples written to a temp
folder): the export is the whole ``export_labels`` (decode, resize, homography sampling,
batched warps, forwards, un-warps, masked mean, NMS, shard writes); the bare time is the
``images × num_homographies`` network forwards with the same chunking and precision
(``adaptation.amp``), nothing else. The forwards are also timed in the other precision
(float32 vs bf16 autocast on channels-last tensors) to print the speed-up of
``adaptation.amp=bf16``.

    python benchmarks/bench_adaptation.py [--images 2] [--homographies 100] [--size 240 320]
        [--device auto] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from pointforge import MAGICPOINT_WEIGHTS
from pointforge.config import load_config
from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS
from pointforge.data.datasets.photo_folder import PhotoFolder, write_sample_photos
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.adaptation import detector_heatmaps, for_amp
from pointforge.tasks.keypoints.export_labels import export_labels
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--homographies", type=int, default=100)
    ap.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = ap.parse_args()
    cfg = load_config(
        "configs/export_labels.yaml",
        [
            f"device={args.device}",
            f"data.image_size=[{args.size[0]},{args.size[1]}]",
            f"adaptation.num_homographies={args.homographies}",
            *args.overrides,
        ],
    )
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    )
    a = cfg.adaptation
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        write_sample_photos(folder, SKIMAGE_PHOTOS[: args.images])
        photos = PhotoFolder(folder, cfg.data.image_size)
        net = build_model_for_state_dict(read_state_dict(MAGICPOINT_WEIGHTS)).to(device).eval()
        # The bare forwards: every image repeated num_homographies times, in the export's chunks
        # (images_per_batch images → images_per_batch × N_h inputs, forward_batch per forward).
        batches = []
        for start in range(0, len(photos), a.images_per_batch):
            imgs = torch.stack(
                [
                    photos[i].image
                    for i in range(start, min(start + a.images_per_batch, len(photos)))
                ]
            )
            batches.append(imgs.repeat_interleave(a.num_homographies, dim=0).to(device))

        def forwards(amp: str) -> float:
            model = for_amp(copy.deepcopy(net), amp)  # .to(memory_format) works in place
            for batch in batches[:1]:  # warm-up (oneDNN primitive creation, CUDA kernels)
                detector_heatmaps(model, batch, a.forward_batch, amp)
            sync(device)
            t0 = time.perf_counter()
            for batch in batches:
                detector_heatmaps(model, batch, a.forward_batch, amp)
            sync(device)
            return time.perf_counter() - t0

        other = "off" if a.amp == "bf16" else "bf16"
        other_time = forwards(other)
        export_labels(cfg, MAGICPOINT_WEIGHTS, folder, Path(tmp) / "warm", progress=False)
        sync(device)
        bare = forwards(a.amp)
        t0 = time.perf_counter()
        export_labels(cfg, MAGICPOINT_WEIGHTS, folder, Path(tmp) / "labels", progress=False)
        sync(device)
        full = time.perf_counter() - t0
    n = len(photos) * a.num_homographies
    print(
        f"device {device}, {torch.get_num_threads()} threads, {len(photos)} images × "
        f"{a.num_homographies} homographies at {cfg.data.image_size[0]}×{cfg.data.image_size[1]}"
    )
    print(f"forwards alone (amp {a.amp}): {bare:.2f} s ({1000 * bare / n:.1f} ms per view)")
    print(f"forwards alone (amp {other}): {other_time:.2f} s ({1000 * other_time / n:.1f} ms/view)")
    fp32, bf16 = (bare, other_time) if a.amp == "off" else (other_time, bare)
    print(f"speed-up of adaptation.amp=bf16 on the forwards: {fp32 / bf16:.2f}x")
    print(f"export-labels:  {full:.2f} s ({1000 * full / n:.1f} ms per view)")
    print(f"ratio export ÷ forwards: {full / bare:.3f} (target ≤ 1.3)")


if __name__ == "__main__":
    main()
