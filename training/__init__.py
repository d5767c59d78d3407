"""Switchboard training: datasets, models, ONNX export, model registry and promotion gate."""
