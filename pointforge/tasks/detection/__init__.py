"""CenterNet 2D detection: model, targets, losses, decoding, COCO evaluation, ONNX export."""
