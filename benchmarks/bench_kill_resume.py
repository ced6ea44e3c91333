"""Kill-safety benchmark: SIGKILL a real ``pointforge train`` N times, resume, compare weights.

Runs a small deterministic MagicPoint training (CPU) once without interruption, then again
while killing it with SIGKILL at seeded random moments and restarting it with ``--resume``
until it finishes. Kill moments are a seeded mix of:

* ``before-first``: the run has written config.yaml but no checkpoint yet;
* ``mid-write``: a checkpoint temp file (``.last.pth.*.tmp`` / ``.iter_*.pth.*.tmp``) has just
  appeared, i.e. ``atomic_save`` is writing (the tally says how many kills really left one);
* ``startup``: a random time while Python/torch start and the task is built;
* ``training``: a random time after the k-th checkpoint of this attempt;
* ``final-eval``: a random time after ``final.pth`` appeared (during the final evaluation).

After every kill, every ``*.pth`` file on disk must load with ``torch.load(weights_only=True)``
and every other file must be a temp file of an interrupted write. At the end the final weights
must be bitwise equal to the uninterrupted run's and no temp file may be left. Prints a tally.

    python benchmarks/bench_kill_resume.py [--kills 20] [--seed 0] [--iters 50] [--workers 1]

tests/engine/test_kill_resume.py runs the same harness with a few kills.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pointforge.engine.checkpoint import Checkpointer, load_checkpoint

CHECKPOINT_NAME = re.compile(r"^(last|final|iter_\d{7,})\.pth$")
TEMP_NAME = re.compile(r"^\.(last|final|iter_\d{7,})\.pth\..+\.tmp$")
POLL_S = 0.0005


def write_config(path: Path, iters: int, workers: int) -> Path:
    """A tiny deterministic MagicPoint run: 32×32 images, batch 2, a checkpoint every step."""
    path.write_text(
        "task: magicpoint\n"
        "seed: 3\n"
        "deterministic: true\n"
        "device: cpu\n"
        f"data: {{batch_size: 2, num_workers: {workers}, image_size: [32, 32]}}\n"
        f"solver: {{max_iter: {iters}}}\n"
        "train: {checkpoint_period: 1, keep_last: 2, log_period: 1, eval_period: 0, "
        "progress_bar: false}\n"
        "eval: {num_images: 2, num_visualize: 1, baselines: [], noisy: false}\n"
    )
    return path


def train_cmd(config: Path, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pointforge", "train", str(config), "--output-dir", str(out)]
    return [*cmd, "--resume"] if resume else cmd


def run_env() -> dict[str, str]:
    """Same environment for every run: the weights only match if the thread count does."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "POINTFORGE_DEBUG": ""}


def run_to_end(config: Path, out: Path, resume: bool, timeout: float = 600) -> float:
    """Run training to completion; returns the wall time. Raises with stderr on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        train_cmd(config, out, resume),
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"training in {out} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


@dataclass
class Moment:
    """When to kill: ``kind`` (see module docstring), ``count`` (k-th temp file / checkpoint)
    and ``delay`` seconds after that event (or after the start, for ``startup``)."""

    kind: str
    count: int = 1
    delay: float = 0.0

    def __str__(self) -> str:
        return f"{self.kind}(k={self.count}, +{self.delay:.2f}s)"


@dataclass
class Tally:
    kills: int = 0
    finished_before_kill: int = 0
    mid_write_kills: int = 0  # kills that left a new temp file, i.e. landed inside a write
    checkpoints_checked: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def files_in(ckpt_dir: Path) -> list[str]:
    try:
        return os.listdir(ckpt_dir)
    except FileNotFoundError:
        return []


def temp_files(ckpt_dir: Path) -> set[str]:
    return {n for n in files_in(ckpt_dir) if TEMP_NAME.match(n)}


def kill_once(config: Path, out: Path, moment: Moment, timeout: float = 300) -> tuple[bool, int]:
    """Start (or resume) the run and SIGKILL it at ``moment``. Returns whether it was killed
    (False: it finished first) and how many temp files of writes *this* attempt started were
    left behind (> 0: the kill landed inside a checkpoint write)."""
    resume = (out / "config.yaml").is_file()
    stale = temp_files(out / "checkpoints")  # left by earlier kills; removed on resume
    proc = subprocess.Popen(
        train_cmd(config, out, resume),
        env=run_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt_dir = out / "checkpoints"
    t0 = time.perf_counter()
    temps_seen: set[str] = set()
    last_mtime = _mtime(ckpt_dir / "last.pth")
    saves = 0
    fire_at: float | None = t0 + moment.delay if moment.kind == "startup" else None
    while proc.poll() is None:
        now = time.perf_counter()
        if now - t0 > timeout:
            proc.kill()
            raise TimeoutError(f"training did not reach kill moment {moment} in {timeout}s")
        if fire_at is None:
            names = files_in(ckpt_dir)
            if moment.kind == "mid-write":
                temps_seen.update(n for n in names if TEMP_NAME.match(n) and n not in stale)
                if len(temps_seen) >= moment.count:
                    fire_at = now
            elif moment.kind == "before-first":
                if (out / "config.yaml").is_file() and not any(
                    CHECKPOINT_NAME.match(n) for n in names
                ):
                    fire_at = now + moment.delay
            elif moment.kind == "training":
                mtime = _mtime(ckpt_dir / "last.pth")
                if mtime != last_mtime:
                    saves, last_mtime = saves + 1, mtime
                    if saves >= moment.count:
                        fire_at = now + moment.delay
            elif moment.kind == "final-eval" and "final.pth" in names:
                fire_at = now + moment.delay
        if fire_at is not None and now >= fire_at:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True, len(temp_files(ckpt_dir) - stale)
        time.sleep(POLL_S)
    return False, 0


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def check_checkpoint_dir(ckpt_dir: Path) -> tuple[int, int]:
    """Every checkpoint name loads (weights_only) and holds weights; every other file is a temp
    file of an interrupted write, never picked for resuming. Returns (checkpoints, temps)."""
    checkpoints = temps = 0
    for name in files_in(ckpt_dir):
        if CHECKPOINT_NAME.match(name):
            ckpt = load_checkpoint(ckpt_dir / name)  # raises on a torn file
            assert ckpt["model"] and isinstance(ckpt["iteration"], int), name
            checkpoints += 1
        elif TEMP_NAME.match(name):
            temps += 1
        else:
            raise AssertionError(f"unexpected file in {ckpt_dir}: {name}")
    chosen = Checkpointer(ckpt_dir).resume_path()
    assert chosen is None or CHECKPOINT_NAME.match(chosen.name), chosen
    return checkpoints, temps


def kill_and_resume(config: Path, out: Path, moments: list[Moment], log: bool = False) -> Tally:
    """Kill the run at each of ``moments`` in turn (checking the checkpoint dir after each),
    then resume it to the end."""
    tally = Tally()
    for i, moment in enumerate(moments):
        killed, new_temps = kill_once(config, out, moment)
        if not killed:
            tally.finished_before_kill += 1
            if log:
                print(f"  [{i + 1:2d}] {moment}: run finished before the kill")
            continue
        tally.kills += 1
        tally.by_kind[moment.kind] = tally.by_kind.get(moment.kind, 0) + 1
        n, temps = check_checkpoint_dir(out / "checkpoints")
        tally.checkpoints_checked += n
        tally.mid_write_kills += int(new_temps > 0)
        if log:
            last = Checkpointer(out / "checkpoints").resume_path()
            at = load_checkpoint(last)["iteration"] if last else "-"
            print(
                f"  [{i + 1:2d}] killed at {moment}: {n} checkpoints load, {temps} temp files, "
                f"resume point: iteration {at}"
            )
    run_to_end(config, out, resume=(out / "config.yaml").is_file())
    return tally


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def random_moments(rng: random.Random, kills: int, startup_s: float) -> list[Moment]:
    """A seeded mix of kill moments: first before the first checkpoint, last during the final
    evaluation (which needs the run to reach its end), in between a run advances by at most 2
    checkpoints per attempt, so ``--iters`` > 2 × ``--kills`` keeps every kill before the end."""
    moments = [Moment("before-first")]
    kinds = ["mid-write", "mid-write", "training", "training", "startup"]
    for _ in range(kills - 2):
        kind = rng.choice(kinds)
        if kind == "mid-write":
            moments.append(Moment(kind, count=rng.randint(1, 2)))
        elif kind == "training":
            moments.append(Moment(kind, count=rng.randint(1, 2), delay=rng.uniform(0, 0.3)))
        else:
            moments.append(Moment(kind, delay=rng.uniform(0, startup_s)))
    if kills > 1:
        moments.append(Moment("final-eval", delay=rng.uniform(0, 0.3)))
    return moments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="number of SIGKILLs (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    ap.add_argument("--iters", type=int, default=50, help="solver.max_iter (default 50)")
    ap.add_argument("--workers", type=int, default=1, help="data.num_workers (default 1)")
    ap.add_argument("--keep", help="keep the run directories here instead of a temp dir")
    args = ap.parse_args()
    if args.kills < 1:
        ap.error("--kills must be >= 1")
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_kill_resume_"))
    root.mkdir(parents=True, exist_ok=True)
    config = write_config(root / "kill_resume.yaml", args.iters, args.workers)
    ref_s = run_to_end(config, root / "reference", resume=False)
    print(f"uninterrupted run: {args.iters} iterations in {ref_s:.1f}s")
    moments = random_moments(random.Random(args.seed), args.kills, startup_s=4.0)
    t0 = time.perf_counter()
    tally = kill_and_resume(config, root / "killed", moments, log=True)
    wall = time.perf_counter() - t0
    final = root / "killed" / "checkpoints"
    match = same_weights(root / "reference/checkpoints/final.pth", final / "final.pth")
    leftovers = [n for n in files_in(final) if TEMP_NAME.match(n)]
    print(
        f"kills survived: {tally.kills}/{tally.kills} (runs that finished before their kill "
        f"moment: {tally.finished_before_kill}); by moment: {tally.by_kind}"
    )
    print(
        f"kills that landed inside a checkpoint write: {tally.mid_write_kills}; checkpoint "
        f"files loaded after kills: {tally.checkpoints_checked}, all intact"
    )
    print(f"temp files left at the end: {len(leftovers)}; wall time with kills: {wall:.1f}s")
    print(f"final weights bitwise equal to the uninterrupted run: {'yes' if match else 'NO'}")
    if not match or leftovers:
        sys.exit(1)


if __name__ == "__main__":
    main()
