"""Enhancing photos with a trained NeRCo: :func:`~nerco.inference.enhancer.load_enhancer`
and the :class:`~nerco.inference.enhancer.Enhancer`, export (ONNX, TorchScript), and test.py
over folders of any size (planning, the decode/enhance/write pipeline, resuming, torchrun
shards). Uses :mod:`nerco.networks`, never :mod:`nerco.training`."""
