"""CenterNet 2D object detection ("objects as points"): data in ``data/``, model/loss/decode
beside it."""
