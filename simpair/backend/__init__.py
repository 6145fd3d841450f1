"""How models run: precision, threads, int8, and the ONNX Runtime backend (``runtime``, ``onnx``, ``onnx_export``)."""
