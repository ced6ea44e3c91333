"""Peak memory of SuperPoint joint training: the descriptor loss alone and a whole step.

Why: the dense hinge loss pairs every cell of A with every cell of B, ``(B, N, N)`` tensors
with ``N = Hc·Wc`` (1200 at 240×320); the issue asks that batch 32 at 240×320 fits in 12 GB.
Each configuration runs in a fresh subprocess and reports its peak resident memory
(``ru_maxrss``) minus the resident memory just before the measured work, so the figures are
the extra memory that work needs on the CPU (on CUDA, activation sizes are the same).

    python benchmarks/bench_superpoint_memory.py                 # loss only, chunk 4 vs 32
    python benchmarks/bench_superpoint_memory.py --step          # + a full training step
    python benchmarks/bench_superpoint_memory.py --step --batch 8
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MB = 1024.0  # ru_maxrss is in KiB on Linux


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(kind: str, batch: int, chunk: int, amp: str, height: int, width: int) -> None:
    import torch
    import torch.nn.functional as F

    from pointforge.models.superpoint import SuperPoint
    from pointforge.tasks.keypoints.descriptor_loss import descriptor_loss
    from pointforge.tasks.keypoints.options import DescriptorLossConfig

    torch.manual_seed(0)
    cfg = DescriptorLossConfig(chunk=chunk)
    hc, wc = height // 8, width // 8
    H = torch.eye(3).expand(batch, 3, 3).clone()
    H[:, 0, 2] = 5.0  # a 5-px shift: some positives in every row
    if kind == "loss":
        d = F.normalize(torch.randn(2 * batch, 256, hc, wc), dim=1).requires_grad_()
        base = rss_kib()
        t = time.perf_counter()
        descriptor_loss(d[:batch], d[batch:], H, cfg=cfg).backward()
    else:
        model = SuperPoint().to(memory_format=torch.channels_last)
        x = torch.rand(2 * batch, 1, height, width).contiguous(memory_format=torch.channels_last)
        base = rss_kib()
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(x)
            labels = torch.randint(0, 65, (2 * batch, hc, wc))
            loss = F.cross_entropy(out["logits"].float(), labels)
            desc = out["descriptors"]
            loss = loss + 1e-4 * descriptor_loss(desc[:batch], desc[batch:], H, cfg=cfg)
        loss.backward()
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"extra_mb": (peak - base) / MB, "seconds": seconds}))


def run(kind: str, batch: int, chunk: int, amp: str, size: tuple[int, int]) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--batch", str(batch)]
    cmd += ["--chunk", str(chunk), "--amp", amp, "--size", str(size[0]), str(size[1])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=32, help="pairs per batch (default 32)")
    p.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    p.add_argument("--step", action="store_true", help="also measure a full training step")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--amp", default="off", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.batch, args.chunk, args.amp, *args.size)
        return
    size = tuple(args.size)
    n = (size[0] // 8) * (size[1] // 8)
    print(f"batch {args.batch} pairs at {size[0]}x{size[1]} ({n} cells, {n * n} pairs/image)")
    rows = [("loss", c, "off") for c in (4, args.batch)]
    if args.step:
        rows += [("step", 4, "off"), ("step", 4, "bf16"), ("step", args.batch, "bf16")]
    for kind, chunk, amp in rows:
        r = run(kind, args.batch, chunk, amp, size)
        what = "descriptor loss fwd+bwd" if kind == "loss" else f"training step ({amp})"
        print(f"{what:<28} chunk {chunk:>3}: +{r['extra_mb']:8.0f} MB  {r['seconds']:6.1f} s")


if __name__ == "__main__":
    main()
