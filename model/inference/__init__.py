"""Inference room: audio -> track embedding (embedder), its runners (eager torch, ONNX Runtime)
and the optional vocal gate. Knows nothing of training."""
