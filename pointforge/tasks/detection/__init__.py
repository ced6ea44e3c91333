"""CenterNet 2D object detection ("objects as points"): data in ``data/``, model/loss/decode
beside it, the engine's task ``centernet`` in ``task.py``.

Importing the package registers the task, its datasets (``coco``, ``voc``, ``yolo``,
``shapes_detection``, ``chess``) and models (``centernet_resnet18/34/50``).
"""

from pointforge.tasks.detection import task  # noqa: F401
