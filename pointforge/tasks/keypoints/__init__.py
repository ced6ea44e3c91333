"""Keypoints as points: MagicPoint, SuperPoint, SuperPoint-Lite and the homography benchmark.

Importing the package registers the family's tasks (and, through them, its datasets and
models); see ``docs/keypoints.md``.
"""

from pointforge.tasks.keypoints import (  # noqa: F401
    distill,
    homography_eval,
    magicpoint,
    superpoint,
)
