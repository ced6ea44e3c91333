"""ReID evaluation cost: chunked query→gallery ranking vs the naive full matrix, and
k-reciprocal re-ranking.

Why: Market-scale evaluation is cheap, but a 20k × 20k query/gallery problem (large private
sets, or MSMT17-sized ones) makes the usual "full distance matrix + full argsort + gathered
pid/camid matrices" evaluation need ~16 GB (float32 distances 1.6 GB, int64 sort order 3.2 GB,
gathered pids and cameras 3.2 GB each, masks and cumulative sums on top). The chunked
evaluator (``pointforge/tasks/reid/metrics.py``) holds one query chunk at a time.

Each case runs in a fresh subprocess and reports wall time and its peak resident memory
(``ru_maxrss``) minus the resident memory after the features were made, i.e. the extra memory
the evaluation needs. glibc's ``malloc`` keeps freed blocks of up to 32 MB for reuse
(its mmap threshold grows after each large free), which would make that figure depend on the
allocation history; the children run with ``MALLOC_MMAP_THRESHOLD_=1MiB`` so blocks above
1 MiB go back to the OS when freed and the peak is the working set. The naive evaluation
runs at ``--naive-size`` (default 5000 × 5000), where it fits, and the chunked one at the
same size for the ratio, plus at ``--size``.

    nice python benchmarks/bench_reid_eval.py                     # 20k × 20k, 512-d
    nice python benchmarks/bench_reid_eval.py --size 8000 --naive-size 4000 --rerank-size 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MB = 1024.0  # ru_maxrss and VmRSS are in KiB on Linux


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_problem(nq: int, ng: int, dim: int, seed: int = 0):
    """Features of ``nq // 4`` identities (centre + noise), 6 cameras, a few junk images."""
    import torch

    g = torch.Generator().manual_seed(seed)
    num_ids = max(nq // 4, 2)
    centres = torch.randn(num_ids, dim, generator=g)
    q_pids = torch.randint(1, num_ids, (nq,), generator=g)
    g_pids = torch.randint(1, num_ids, (ng,), generator=g)
    g_pids[torch.rand(ng, generator=g) < 0.02] = -1  # junk
    qf = centres[q_pids] + 3.0 * torch.randn(nq, dim, generator=g)
    gf = centres[g_pids.clamp(min=0)] + 3.0 * torch.randn(ng, dim, generator=g)
    q_cams = torch.randint(0, 6, (nq,), generator=g)
    g_cams = torch.randint(0, 6, (ng,), generator=g)
    return qf, gf, q_pids, g_pids, q_cams, g_cams


def naive_eval(qf, gf, q_pids, g_pids, q_cams, g_cams, max_rank: int = 50) -> tuple[float, float]:
    """The common full-matrix evaluation (as in torchreid / FastReID's Python path)."""
    import numpy as np
    import torch.nn.functional as F

    dist = (1 - F.normalize(qf, dim=1) @ F.normalize(gf, dim=1).t()).numpy()
    qp, gp, qc, gc = (t.numpy() for t in (q_pids, g_pids, q_cams, g_cams))
    indices = np.argsort(dist, axis=1, kind="stable")
    matches = gp[indices] == qp[:, None]
    removed = ((gp[indices] == qp[:, None]) & (gc[indices] == qc[:, None])) | (gp[indices] == -1)
    cmc_sum, aps = np.zeros(max_rank), []
    for i in range(len(qp)):
        hits = matches[i][~removed[i]]
        if not hits.any():
            continue
        cum = hits.cumsum()
        cmc_sum += np.minimum(cum[:max_rank], 1)
        aps.append(float((cum / (np.arange(len(hits)) + 1))[hits].mean()))
    return float(cmc_sum[0] / len(aps)), float(np.mean(aps))


def child(case: str, nq: int, ng: int, dim: int, chunk: int) -> None:
    import torch

    from pointforge.tasks.reid.metrics import evaluate_rank
    from pointforge.tasks.reid.rerank import rerank_distance_chunks

    torch.set_num_threads(1)
    problem = make_problem(nq, ng, dim)
    before = rss_kib()
    t0 = time.perf_counter()
    if case == "chunked":
        res = evaluate_rank(*problem[:2], problem[2], problem[3], problem[4], problem[5],
                            chunk_size=chunk)  # fmt: skip
        rank1, m_ap = float(res.cmc[0]), res.mAP
    elif case == "naive":
        rank1, m_ap = naive_eval(*problem)
    else:  # rerank: the re-ranked distances of every chunk (consumed, not kept)
        qf = torch.nn.functional.normalize(problem[0], dim=1)
        gf = torch.nn.functional.normalize(problem[1], dim=1)
        rows = sum(d.shape[0] for _, d in rerank_distance_chunks(qf, gf, chunk_size=chunk))
        rank1, m_ap = float(rows), float("nan")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"s": seconds, "mb": (peak - before) / MB, "rank1": rank1, "mAP": m_ap}))


def run(case: str, nq: int, ng: int, dim: int, chunk: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", case, "--size", str(nq), "--gallery", str(ng),
           "--dim", str(dim), "--chunk", str(chunk)]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)  # see the module docstring
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark case {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20_000, help="queries = gallery size")
    ap.add_argument("--gallery", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--naive-size", type=int, default=5_000)
    ap.add_argument("--rerank-size", type=int, default=5_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--child", choices=("chunked", "naive", "rerank"))
    args = ap.parse_args()
    if args.child:
        child(args.child, args.size, args.gallery or args.size, args.dim, args.chunk)
        return
    n, m, d = args.naive_size, args.size, args.dim
    naive = run("naive", n, n, d, args.chunk)
    small = run("chunked", n, n, d, args.chunk)
    big = run("chunked", m, m, d, args.chunk)
    print(f"{n}×{n}, {d}-d: naive   {naive['s']:7.1f} s  {naive['mb']:8.0f} MB  "
          f"rank1 {naive['rank1']:.4f} mAP {naive['mAP']:.4f}")  # fmt: skip
    print(f"{n}×{n}, {d}-d: chunked {small['s']:7.1f} s  {small['mb']:8.0f} MB  "
          f"rank1 {small['rank1']:.4f} mAP {small['mAP']:.4f}")  # fmt: skip
    print(f"  chunked / naive: time {small['s'] / naive['s']:.2f}×, "
          f"memory {small['mb'] / max(naive['mb'], 1):.3f}×")  # fmt: skip
    print(f"{m}×{m}, {d}-d: chunked {big['s']:7.1f} s  {big['mb']:8.0f} MB  "
          f"rank1 {big['rank1']:.4f} mAP {big['mAP']:.4f}")  # fmt: skip
    scale = (m / n) ** 2
    print(f"  naive at {m}×{m} would need ~{naive['mb'] * scale / 1024:.1f} GB "
          f"(its {n}×{n} figure × {scale:.0f}); not run")  # fmt: skip
    r = args.rerank_size
    rr = run("rerank", r, r, d, args.chunk * 2)
    print(f"{r}×{r}, {d}-d: k-reciprocal re-ranking (k1=20, k2=6) {rr['s']:7.1f} s  "
          f"{rr['mb']:8.0f} MB extra")  # fmt: skip


if __name__ == "__main__":
    main()
