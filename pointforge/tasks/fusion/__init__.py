"""Radar-camera 3D detection (CenterFusion): nuScenes metrics and submission files, the
synthetic radar-camera scenes and the nuScenes reader (``data/``), the CenterNet-based fusion
model with frustum association, and task ``centerfusion``. Importing the package registers the
task, its datasets (``synthetic_radar_camera``, ``nuscenes``) and model (``centerfusion``)."""

from pointforge.tasks.fusion import task  # noqa: F401
