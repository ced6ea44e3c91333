"""Task families. Importing this package registers every task in ``TASKS``."""

from pointforge.tasks.classification import task as classification_task  # noqa: F401
from pointforge.tasks.keypoints import (
    homography_eval,  # noqa: F401
    magicpoint,  # noqa: F401
    superpoint,  # noqa: F401
)
