"""Homography-benchmark report: metrics.json, report.md and matplotlib figures.

Why figures: a table hides *how* a method fails. The corner-error distribution shows whether
a method is slightly off or breaks down, and the example matches show where. Files written
under ``<out>/eval/``:

* ``metrics.json``: flat ``{"<split>/<method>/<metric>": value}`` (NaN → ``null``) + run info;
* ``report.md``: one methods × metrics table per split ("n/a" where a metric does not apply,
  e.g. descriptor metrics of a detector-only model);
* ``homography_metrics.png``: one bar chart per metric, methods side by side, one bar per split;
* ``corner_error.png``: cumulative distribution of the corner error per method;
* ``matches_<k>.png``: example pairs, mutual-NN matches per method (green RANSAC inliers,
  red outliers); detector-only methods show their keypoints (yellow) instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from pointforge.data.datasets.homography_pairs import HomographyPair
from pointforge.evaluation.homography import PairRecord

# Metrics drawn as bar charts and listed in the tables, in this order; units in the labels.
TABLE_METRICS: tuple[str, ...]
TABLE_METRICS = ("rep", "mle", "h_acc@1", "h_acc@3", "h_acc@5", "auc@1", "auc@3", "auc@5")
TABLE_METRICS += ("nn_map", "m_score", "num_kpts", "ms_per_pair", "metric_ms")
LABELS = {"mle": "MLE (px)", "ms_per_pair": "extraction ms / pair", "num_kpts": "keypoints / image"}
LABELS["metric_ms"] = "metrics ms / pair"


def split_tables(metrics: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"<split>/<method>/<metric>": v}`` → ``{split: {method: {metric: v}}}`` (key order)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in metrics.items():
        split, method, metric = key.split("/", 2)
        out.setdefault(split, {}).setdefault(method, {})[metric] = value
    return out


def format_method_table(metrics: dict[str, float]) -> str:
    """Render ``{"clean/ap": .., "clean/harris/ap": .., ...}`` as a methods × columns table.

    Keys are ``<variant>/<metric>`` for the model and ``<variant>/<method>/<metric>`` for
    baselines; anything else is listed below the table.
    """
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    other: dict[str, float] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 2:
            method, col = "model", f"{parts[0]} {parts[1]}"
        elif len(parts) == 3:
            method, col = parts[1], f"{parts[0]} {parts[2]}"
        else:
            other[key] = value
            continue
        rows.setdefault(method, {})[col] = value
        if col not in columns:
            columns.append(col)
    if not rows:  # flat metrics (e.g. classification top1/top5): one "name: value" per line
        return "\n".join(f"{k}: {v:.4f}" for k, v in other.items())
    width = max([len(c) for c in columns] + [8])
    name = max([len(m) for m in rows] + [10])  # e.g. a reference-weights stem
    head = f"{'method':<{name}}" + "".join(f"{c:>{width + 2}}" for c in columns)
    lines = [head, "-" * len(head)]
    for method, vals in rows.items():
        cells = "".join(
            f"{vals[c]:>{width + 2}.4f}" if c in vals else f"{'-':>{width + 2}}" for c in columns
        )
        lines.append(f"{method:<{name}}{cells}")
    lines += [f"{k}: {v:.4f}" for k, v in other.items()]
    return "\n".join(lines)


def _cell(value: float | None, metric: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.1f}" if metric in ("ms_per_pair", "metric_ms", "num_kpts") else f"{value:.3f}"


def format_tables(metrics: dict[str, float], markdown: bool = False) -> str:
    """Methods × metrics table per split, plain text (terminal) or GitHub markdown."""
    blocks = []
    for split, methods in split_tables(metrics).items():
        cols = [m for m in TABLE_METRICS if any(m in v for v in methods.values())]
        rows = [[name] + [_cell(vals.get(c), c) for c in cols] for name, vals in methods.items()]
        head = [f"{split} ({len(methods)} methods)" if not markdown else split, *cols]
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
        else:
            widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
            fmt = "  ".join(f"{{:>{w}}}" if i else f"{{:<{w}}}" for i, w in enumerate(widths))
            lines = [fmt.format(*head), "-" * (sum(widths) + 2 * len(widths) - 2)]
            lines += [fmt.format(*r) for r in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot_metric_bars(metrics: dict[str, float], path: Path) -> None:
    """One panel per metric; x = methods, one bar per split. NaN metrics are marked "n/a"."""
    tables = split_tables(metrics)
    splits = list(tables)
    methods = list(next(iter(tables.values())))
    names = [m for m in TABLE_METRICS if m != "num_kpts"]
    ncols = 4
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    width = 0.8 / len(splits)
    x = np.arange(len(methods))
    for ax, metric in zip(axes.flat, names, strict=False):
        for i, split in enumerate(splits):
            vals = np.array([tables[split][m].get(metric, np.nan) for m in methods], float)
            ax.bar(x + (i - (len(splits) - 1) / 2) * width, np.nan_to_num(vals), width, label=split)
            for xi, v in zip(x, vals, strict=True):
                if np.isnan(v) and i == 0:
                    ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_title(LABELS.get(metric, metric))
        ax.set_xticks(x, methods, rotation=20, fontsize=8)
        if metric not in LABELS:
            ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_corner_error(
    records: dict[str, list[PairRecord]], path: Path, max_px: float = 10.0
) -> None:
    """Cumulative fraction of pairs with corner error ≤ x (failures never reach the curve)."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    xs = np.linspace(0, max_px, 201)
    for method, recs in records.items():
        err = np.array([r.corner_error for r in recs], float)
        if len(err) == 0 or np.isnan(err).all():
            ax.plot([], [], label=f"{method} (no descriptors)")
            continue
        cdf = (err[None, :] <= xs[:, None]).mean(1)
        ax.plot(xs, cdf, label=f"{method} (median {np.median(err):.2f} px)")
    ax.set_xlabel("mean corner error (px)")
    ax.set_ylabel("fraction of pairs")
    ax.set_title("Homography corner error, cumulative")
    ax.set_xlim(0, max_px)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_matches(
    pair: HomographyPair, records: dict[str, PairRecord], path: Path, max_lines: int = 200
) -> None:
    """Side-by-side pair per method with its mutual-NN matches (green inlier, red outlier)."""
    h1, w1 = pair.image1.shape[:2]
    h2, w2 = pair.image2.shape[:2]
    canvas = np.zeros((max(h1, h2), w1 + w2), np.uint8)
    canvas[:h1, :w1], canvas[:h2, w1:] = pair.image1, pair.image2
    fig = Figure(figsize=(9, 3.4 * len(records)))
    axes = fig.subplots(len(records), 1, squeeze=False)
    for ax, (method, rec) in zip(axes[:, 0], records.items(), strict=True):
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=255)
        if len(rec.points1) == 0:
            kp = np.concatenate([rec.keypoints1, rec.keypoints2 + np.array([w1, 0], np.float32)])
            ax.scatter(kp[:, 0], kp[:, 1], s=6, c="yellow", edgecolors="none")
            ax.set_title(
                f"{method}: {len(rec.keypoints1)} + {len(rec.keypoints2)} keypoints, no "
                f"descriptors (repeatability {rec.rep:.2f})",
                fontsize=9,
            )
        else:
            p1, p2 = rec.points1, rec.points2 + np.array([w1, 0], np.float32)
            keep = np.linspace(0, len(p1) - 1, min(max_lines, len(p1))).astype(int)
            segs = np.stack([p1[keep], p2[keep]], 1)
            colours = np.where(rec.inliers[keep, None], [[0.1, 0.9, 0.2]], [[0.95, 0.1, 0.1]])
            ax.add_collection(LineCollection(list(segs), colors=colours, linewidths=0.7))
            ax.set_title(
                f"{method}: {int(rec.inliers.sum())}/{len(p1)} inliers, corner error "
                f"{rec.corner_error:.2f} px",
                fontsize=9,
            )
        ax.axis("off")
    fig.suptitle(f"{pair.name} ({pair.split})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_report(
    output_dir: str | Path,
    metrics: dict[str, float],
    records: dict[str, list[PairRecord]],
    examples: Sequence[tuple[int, HomographyPair]] = (),
    info: dict | None = None,
) -> list[Path]:
    """Write every artefact under ``output_dir/eval``; returns the written paths.

    ``examples``: ``(pair index, pair)`` drawn into ``matches_<k>.png`` with each method's
    record of that index.
    """
    out = Path(output_dir) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if math.isnan(v) else v) for k, v in metrics.items()}
    paths = [out / "metrics.json", out / "report.md"]
    paths[0].write_text(json.dumps({"info": info or {}, "metrics": clean}, indent=2) + "\n")
    lines = ["# Homography benchmark", ""]
    lines += [f"- {k}: {v}" for k, v in (info or {}).items()]
    lines += ["", format_tables(metrics, markdown=True), ""]
    paths[1].write_text("\n".join(lines))
    paths.append(out / "homography_metrics.png")
    plot_metric_bars(metrics, paths[-1])
    paths.append(out / "corner_error.png")
    plot_corner_error(records, paths[-1])
    for k, (index, pair) in enumerate(examples):
        paths.append(out / f"matches_{k}.png")
        plot_matches(pair, {m: recs[index] for m, recs in records.items()}, paths[-1])
    return paths
