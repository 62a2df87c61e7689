"""Scoring results the way papers do: pairing predictions with ground truth, the metrics
(PSNR, SSIM, LPIPS, NIQE, LOE), reports and paper tables, and the result viewer pages.
``python -m nerco.evaluate`` is :func:`nerco.evaluation.cli.main`."""
