"""Export of trained models to serving: the bundle folder (ONNX + Triton repository + catalogue)."""
