"""Image classification (torchvision ResNets on built-in digits or an image folder).

Importing the package registers task ``classification`` with its datasets and models.
"""

from pointforge.tasks.classification import task  # noqa: F401
