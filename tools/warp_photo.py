"""Make a second view of a photo with a known homography, to check `pointforge match`.

    python tools/warp_photo.py IMG --out DIR [--angle 15] [--scale 0.85] [--perspective 1e-4]
    pointforge match DIR/view1.png DIR/view2.png --out match.png --true-homography DIR/H.txt

H (view 1 -> view 2) rotates by --angle degrees about the image centre, scales by --scale and
tilts by --perspective (the projective terms h31 = h32); view 2 keeps view 1's size.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np


def known_homography(
    height: int, width: int, angle: float, scale: float, perspective: float
) -> np.ndarray:
    """``(3, 3)`` float64: centre → rotate/scale → tilt → back to the centre."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a = math.radians(angle)
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    rot = np.array(
        [
            [scale * math.cos(a), -scale * math.sin(a), 0],
            [scale * math.sin(a), scale * math.cos(a), 0],
            [0, 0, 1],
        ]
    )
    tilt = np.array([[1, 0, 0], [0, 1, 0], [perspective, perspective, 1]], np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], np.float64)
    H = back @ tilt @ rot @ to_origin
    return H / H[2, 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("image")
    p.add_argument("--out", required=True, help="output folder (view1.png, view2.png, H.txt)")
    p.add_argument("--angle", type=float, default=15.0, help="degrees (default 15)")
    p.add_argument("--scale", type=float, default=0.85, help="default 0.85")
    p.add_argument("--perspective", type=float, default=1e-4, help="h31 = h32 (default 1e-4)")
    args = p.parse_args()
    img = cv2.imread(args.image, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"cannot read image {args.image}")
    h, w = img.shape
    H = known_homography(h, w, args.angle, args.scale, args.perspective)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / "view1.png"), img)
    cv2.imwrite(str(out / "view2.png"), cv2.warpPerspective(img, H, (w, h)))
    np.savetxt(out / "H.txt", H)
    print(f"wrote {out}/view1.png, view2.png and H.txt")


if __name__ == "__main__":
    main()
