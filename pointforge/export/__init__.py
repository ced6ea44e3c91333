"""Deployment exports of trained models (ONNX). See :mod:`pointforge.export.onnx`."""
