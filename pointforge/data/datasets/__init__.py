"""Datasets. Importing this package registers every dataset in ``DATASETS``, so a config's
``data.name`` is validated against all of them, whichever task module was imported first."""

from pointforge.data.datasets import (  # noqa: F401
    digits,
    homography_pairs,
    hpatches,
    image_folder,
    photo_folder,
    synthetic_shapes,
    warped_pairs,
)
