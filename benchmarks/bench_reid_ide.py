"""BoT (pointforge's re-ID recipe) against the plain softmax "IDE" baseline, side by side.

IDE (Zheng et al. 2016, "Person Re-identification: Past, Present and Future", the ID-
discriminative embedding): torchvision ResNet-18 from scratch, last stride 2, global average
pooling, one linear classifier, cross-entropy with label smoothing 0.1 only; its pooled
feature is the embedding. BoT adds last stride 1, the BNNeck and the batch-hard triplet loss.
Everything else is shared, through the same engine run: the synthetic identity set, P×K
batches, input size, augmentation, Adam 3.5e-4 with warm-up and multistep, iterations, and
the evaluation (cosine distance, held-out identities, with and without re-ranking).

    OMP_NUM_THREADS=2 python benchmarks/bench_reid_ide.py --iters 150 --out /tmp/bench_reid
    # or one arm per process (two cores), then the table:
    python benchmarks/bench_reid_ide.py --arm bot --out DIR & \
    python benchmarks/bench_reid_ide.py --arm ide --out DIR; wait
    python benchmarks/bench_reid_ide.py --report --out DIR

Each arm writes ``DIR/<arm>.json`` (metrics, wall time, the exact overrides).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pointforge.config import load_config  # noqa: E402
from pointforge.engine import run  # noqa: E402
from pointforge.registry import MODELS  # noqa: E402

KEYS = ("rank1", "mAP", "mINP")


class IDENet(nn.Module):
    """torchvision ResNet-18 (last stride 2) → average pooling → linear classifier.

    ``train()`` forward → ``{"features": (B, 512), "logits": (B, N)}``; ``eval()`` → the pooled
    ``(B, 512)`` feature (the IDE embedding)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        net = resnet18(weights=None)
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        self.net = net
        self.embedding_dim = net.fc.in_features

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor] | torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(images))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        feats = F.adaptive_avg_pool2d(x, 1).flatten(1)
        if not self.training:
            return feats
        return {"features": feats, "logits": n.fc(feats)}


@dataclass(frozen=True)
class IDEKeys:
    """``model.`` keys the shared config sets; IDE accepts only torchvision's values."""

    last_stride: int = 2
    pooling: str = "avg"


@MODELS.register("bench_ide_resnet18", params=IDEKeys)
def ide_resnet18(num_classes: int, last_stride: int = 2, pooling: str = "avg") -> IDENet:
    if (last_stride, pooling) != (2, "avg"):
        raise ValueError("IDE is torchvision's ResNet: model.last_stride=2, model.pooling=avg")
    return IDENet(num_classes)


def overrides(args: argparse.Namespace, arm: str) -> list[str]:
    """The run's config overrides on top of configs/reid_synthetic.yaml."""
    steps = [round(args.iters * 40 / 120), round(args.iters * 90 / 120)]  # FastReID epochs
    common = [
        "device=cpu",
        f"data.num_workers={args.workers}",
        f"data.height={args.height}",
        f"data.width={args.width}",
        f"data.image_size=[{args.height},{args.width}]",
        f"reid.p={args.p}",
        f"reid.k={args.k}",
        f"data.batch_size={args.p * args.k}",
        f"solver.max_iter={args.iters}",
        f"solver.warmup_iters={max(1, round(args.iters * 10 / 120))}",
        f"solver.steps=[{steps[0]},{steps[1]}]",
        f"train.checkpoint_period={args.iters}",
        "train.progress_bar=false",
        f"output_dir={Path(args.out) / arm}",
    ]
    if arm == "ide":
        common += ["model.name=bench_ide_resnet18", "model.last_stride=2", "reid.triplet_weight=0"]
    return common


def train_arm(args: argparse.Namespace, arm: str) -> dict[str, Any]:
    extra = overrides(args, arm)
    cfg = load_config(ROOT / "configs" / "reid_synthetic.yaml", extra)
    start = time.perf_counter()
    metrics = run.train(cfg, overwrite=True)
    result = {
        "arm": arm,
        "overrides": extra,
        "wall_s": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
        "metrics": metrics,
    }
    out = Path(args.out) / f"{arm}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(out: Path) -> None:
    arms = {a: json.loads((out / f"{a}.json").read_text()) for a in ("bot", "ide")}
    print(f"{'metric':<22}{'BoT':>9}{'IDE':>9}{'BoT-IDE':>10}")
    for prefix in ("reid", "reid_rerank"):
        for key in KEYS:
            name = f"{prefix}/{key}"
            if name not in arms["bot"]["metrics"]:
                continue
            b, i = arms["bot"]["metrics"][name], arms["ide"]["metrics"][name]
            print(f"{name:<22}{b:>9.4f}{i:>9.4f}{b - i:>+10.4f}")
    for a in ("bot", "ide"):
        print(f"{a}: {arms[a]['wall_s'] / 60:.1f} min training + evaluation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--p", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="runs/bench_reid_ide")
    parser.add_argument("--arm", choices=("bot", "ide", "both"), default="both")
    parser.add_argument("--report", action="store_true", help="only print the table")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report:
        for arm in ("bot", "ide") if args.arm == "both" else (args.arm,):
            train_arm(args, arm)
    if args.report or args.arm == "both":
        report(Path(args.out))


if __name__ == "__main__":
    main()
