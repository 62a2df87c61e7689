"""Training NeRCo: the objective and its two optimisation steps (:mod:`~nerco.training.model`,
:mod:`~nerco.training.losses`, the CLIP term, image pools), and the run around them: building
it from the options, the loop, resuming, torchrun, stopping, the display and the logs.
train.py is :func:`nerco.training.cli.main`."""
