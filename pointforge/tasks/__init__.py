"""Task families. Importing this package registers every task in ``TASKS``."""

from pointforge.tasks.keypoints import magicpoint  # noqa: F401
