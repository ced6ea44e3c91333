"""``pointforge retrieve``: rank a gallery folder for a query crop with a re-ID checkpoint.

Thin: parses and calls :func:`pointforge.tasks.reid.retrieval.retrieve` (imported when the
command runs, so ``pointforge --help`` stays fast).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    """Add the ``retrieve`` subparser to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "retrieve",
        help="re-ID: rank a gallery folder for a query image (top-k list + PNG strip)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Embed QUERY and every image under GALLERY_DIR with the re-ID checkpoint "
        "WEIGHTS and print the top-k gallery images by cosine distance; --out writes them as a "
        "strip, framed green (same identity) or red (another) when the file names tell the "
        "identities (Market-1501/DukeMTMC names, or GALLERY_DIR/<identity>/<camera>_*.jpg). "
        "As in the Market protocol, crops of the query's identity from the query's camera, "
        "junk crops (identity -1) and the query file itself are left out.",
    )
    p.add_argument("weights", metavar="WEIGHTS", help="a re-ID checkpoint (task reid)")
    p.add_argument("query", metavar="QUERY", help="the query crop")
    p.add_argument("gallery", metavar="GALLERY_DIR", help="folder of gallery crops (recursive)")
    p.add_argument("--top-k", type=int, default=10, help="how many gallery images to list")
    p.add_argument("--out", default=None, help="write the strip as this PNG")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch-size", type=int, default=64, help="gallery crops per forward")
    p.set_defaults(func=cmd_retrieve)


def cmd_retrieve(args: argparse.Namespace) -> int:
    from pointforge.tasks.reid.retrieval import retrieve

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    result = retrieve(
        args.weights,
        args.query,
        args.gallery,
        top_k=args.top_k,
        out_png=args.out,
        device=args.device,
        batch_size=args.batch_size,
    )
    marks = {True: "correct", False: "wrong", None: "?"}
    for rank, (path, dist, ok) in enumerate(
        zip(result["paths"], result["distances"], result["correct"], strict=True), start=1
    ):
        print(f"{rank:3d}  {float(dist):.4f}  {marks[ok]:<7}  {path}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
