"""What a sweep leaves behind: a table (CSV + text), a plot of the metric against each searched
parameter, and the best trial's config as a YAML file that ``pointforge train`` runs as is.

Kept apart from Ray: everything here works on plain :class:`TrialRow` values, so it is tested
without a cluster. A trial stopped early by ASHA keeps the metric of its last evaluation; it is
shown (marked ``stopped``) but not a candidate for the best config, whose metric must be that
of a complete run so that ``pointforge train`` reproduces it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pointforge.config.yaml_io import parse_yaml
from pointforge.engine.checkpoint import atomic_write_text
from pointforge.tune.hook import HOOK_NAME


@dataclass(frozen=True)
class TrialRow:
    """One trial: drawn ``values``, the metric of its last evaluation at ``iteration``."""

    trial_id: str
    values: dict[str, Any]
    metric: float | None
    iteration: int  # training iteration of the last reported evaluation
    max_iter: int
    reports: int  # evaluations reported to Ray
    error: str | None
    run_dir: str

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "done" if self.iteration >= self.max_iter else "stopped"


def best_row(rows: list[TrialRow], mode: str) -> TrialRow:
    """The complete trial with the best metric (``mode`` ``max``/``min``)."""
    done = [r for r in rows if r.status == "done" and r.metric is not None]
    if not done:
        raise RuntimeError("no trial of the sweep finished; no best config to write")
    if mode not in ("max", "min"):
        raise ValueError(f"--mode must be max or min, got {mode!r}")
    key = (lambda r: -r.metric) if mode == "max" else (lambda r: r.metric)
    return min(done, key=key)  # first in trial order among equals


def table(rows: list[TrialRow], metric: str) -> tuple[list[str], list[list[Any]]]:
    keys = list(rows[0].values) if rows else []
    header = ["trial", *keys, metric, "iteration", "status", "run_dir"]
    body = [
        [r.trial_id, *(r.values[k] for k in keys), r.metric, r.iteration, r.status, r.run_dir]
        for r in rows
    ]
    return header, body


def write_table(rows: list[TrialRow], metric: str, path: str | Path) -> str:
    """Write ``path`` (CSV) and return the same table as aligned text for the terminal."""
    header, body = table(rows, metric)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    atomic_write_text(buf.getvalue(), path)
    cells = [header, *[[_fmt(v) for v in row] for row in body]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return "-" if v is None else str(v)


def plot(rows: list[TrialRow], metric: str, path: str | Path) -> None:
    """One panel per searched parameter: the last metric of each trial against its value
    (log x-axis for positive ranges spanning more than two decades; choices as categories).
    Trials stopped early are drawn hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(rows[0].values) if rows else []
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3.2))
    axes = [axes] if not hasattr(axes, "__len__") else list(axes)
    scored = [r for r in rows if r.metric is not None]
    for ax, key in zip(axes, keys):
        xs = [r.values[key] for r in scored]
        numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
        if not numeric:
            labels = sorted({str(x) for x in xs})
            xs = [labels.index(str(x)) for x in xs]
            ax.set_xticks(range(len(labels)), labels)
        elif xs and min(xs) > 0 and max(xs) / min(xs) > 100:
            ax.set_xscale("log")
        for r, x in zip(scored, xs):
            done = r.status == "done"
            ax.scatter(x, r.metric, c="C0" if done else "none", edgecolors="C0")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} per trial (hollow: stopped early)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_best_config(row: TrialRow, path: str | Path) -> dict[str, Any]:
    """The resolved config of ``row``'s run (its ``config.yaml``) without ``output_dir`` and
    the sweep's hook, written to ``path``; ``pointforge train`` runs it as is."""
    source = Path(row.run_dir) / "config.yaml"
    data = parse_yaml(source.read_text())
    data.pop("output_dir", None)
    train = data.get("train") or {}
    if HOOK_NAME in (train.get("hooks") or []):
        train["hooks"] = [h for h in train["hooks"] if h != HOOK_NAME]
    values = ", ".join(f"{k}={v}" for k, v in row.values.items())
    head = f"# Best trial {row.trial_id} of a pointforge tune sweep: {values}\n"
    head += f"# metric {row.metric} at iteration {row.iteration} ({source})\n"
    atomic_write_text(head + yaml.safe_dump(data, sort_keys=False), path)
    return data
