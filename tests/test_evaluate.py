"""nerco.evaluation (metrics, pairing, scoring, reports) against independent formulas; the
``python -m nerco.evaluate`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import optimize
from scipy.special import gamma

from nerco.evaluation import metrics, niqe
from nerco.evaluation.cli import main
from nerco.evaluation.pairing import Pair, pair_folders
from nerco.evaluation.scoring import Protocol, Scorer
from nerco.runtime import UserError


def _rand(shape, seed, low=0, high=256):
    return np.random.RandomState(seed).randint(low, high, size=shape).astype(np.uint8)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


# ------------------------------------------------------------------ PSNR, SSIM, Y, GT-mean
def test_psnr_is_mse_formula():
    a, b = _rand((13, 17, 3), 0), _rand((13, 17, 3), 1)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
    assert metrics.psnr(a, a) == math.inf


def _ssim_direct(x, y):
    """Wang et al.: SSIM map over every full 11×11 window (σ = 1.5), population moments."""
    t = np.arange(-5, 6)
    w = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(values))


def test_ssim_matches_direct_gaussian_window_formula():
    gt = _rand((19, 23, 3), 2)
    pred = np.clip(gt.astype(int) + _rand((19, 23, 3), 3, 0, 60) - 30, 0, 255).astype(np.uint8)
    expected = np.mean([_ssim_direct(pred[..., c], gt[..., c]) for c in range(3)])
    assert metrics.ssim(pred, gt) == pytest.approx(expected, abs=1e-10)
    y_pred, y_gt = metrics.to_y(pred), metrics.to_y(gt)
    assert metrics.ssim(y_pred, y_gt) == pytest.approx(_ssim_direct(y_pred, y_gt), abs=1e-10)
    assert metrics.ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert 0 < metrics.ssim(pred, gt) < 1
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(gt[:10], gt[:10])


def test_y_channel_is_matlab_rgb2ycbcr():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]]], np.uint8)
    r, g, b = (rgb[..., c].astype(float) for c in range(3))
    expected = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    np.testing.assert_allclose(metrics.to_y(rgb), expected, atol=1e-12)
    assert metrics.to_y(rgb)[0, :2].tolist() == pytest.approx([16, 235])


def test_gt_mean_alignment_formula():
    gt = (_rand((12, 12, 3), 4, 0, 100) * 2).astype(np.uint8)
    aligned, k = metrics.gt_mean_align(gt // 2, gt)  # exactly half as bright
    assert k == pytest.approx(2.0) and np.allclose(aligned, gt)
    pred = _rand((12, 12, 3), 5)
    aligned, k = metrics.gt_mean_align(pred, gt)
    grey = np.array([0.299, 0.587, 0.114])
    assert k == pytest.approx((gt @ grey).mean() / (pred @ grey).mean())
    np.testing.assert_allclose(aligned, np.clip(k * pred.astype(float), 0, 255))
    black = np.zeros_like(gt)
    assert metrics.gt_mean_align(black, gt)[1] == 1.0
    spots = np.full_like(gt, 20)
    spots[0, 0] = 250  # k ≈ 5 pushes this pixel far past 255: clipped
    aligned, k = metrics.gt_mean_align(spots, gt)
    assert k > 2 and aligned.max() == 255.0 and aligned[1, 1, 0] == pytest.approx(20 * k)


def test_scorer_applies_gt_mean_then_y(tmp_path):
    gt = _rand((16, 16, 3), 6)
    pred = (gt // 2).astype(np.uint8)
    pair = Pair("x", str(_save(tmp_path / "p.png", pred)), str(_save(tmp_path / "g.png", gt)))
    plain = Scorer(Protocol()).score(pair)
    assert plain["psnr"] == pytest.approx(metrics.psnr(pred, gt))
    aligned, k = metrics.gt_mean_align(pred, gt)
    both = Scorer(Protocol(y_channel=True, gt_mean=True)).score(pair)
    assert both["gt_mean_scale"] == pytest.approx(k)
    assert both["psnr"] == pytest.approx(metrics.psnr(metrics.to_y(aligned), metrics.to_y(gt)))
    assert both["ssim"] == pytest.approx(metrics.ssim(metrics.to_y(aligned), metrics.to_y(gt)))
    assert both["psnr"] > plain["psnr"] + 5


# ------------------------------------------------------------------ NIQE pieces
def _r(alpha):
    return gamma(2 / alpha) ** 2 / (gamma(1 / alpha) * gamma(3 / alpha))


def test_aggd_fit_solves_the_moment_equation():
    x = np.random.RandomState(7).standard_t(5, size=5000) + 0.2
    alpha, bl, br = niqe.fit_aggd(x)
    left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    target = np.mean(np.abs(x)) ** 2 / np.mean(x**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    root = optimize.brentq(lambda a: _r(a) - target, 0.2, 10)
    assert abs(alpha - root) <= 0.0006  # grid step 0.001
    assert bl == pytest.approx(left * math.sqrt(gamma(1 / alpha) / gamma(3 / alpha)))
    assert br == pytest.approx(right * math.sqrt(gamma(1 / alpha) / gamma(3 / alpha)))


def test_aggd_fit_recovers_known_parameters():
    rng = np.random.RandomState(8)
    alpha, bl, br, n = 1.4, 0.5, 0.9, 400_000
    # AGGD: left side with probability bl/(bl+br); |x|/β ~ Gamma(1/α)^(1/α)
    magnitude = rng.gamma(1 / alpha, size=n) ** (1 / alpha)
    left = rng.rand(n) < bl / (bl + br)
    x = np.where(left, -bl * magnitude, br * magnitude)
    fit = niqe.fit_aggd(x)
    assert fit[0] == pytest.approx(alpha, rel=0.03)
    assert fit[1] == pytest.approx(bl, rel=0.02) and fit[2] == pytest.approx(br, rel=0.02)
    assert niqe.fit_aggd(np.abs(x))[0] == pytest.approx(0.2)  # one-sided: MATLAB's α


def test_mscn_matches_direct_window_with_replicated_border():
    image = _rand((12, 14), 9).astype(float)
    t = np.arange(-3, 4)
    w = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * (7 / 6) ** 2))
    w /= w.sum()
    padded = np.pad(image, 3, mode="edge")
    got = niqe.mscn(image)
    for i, j in [(0, 0), (0, 13), (5, 6), (11, 2)]:
        patch = padded[i : i + 7, j : j + 7]
        mu = (w * patch).sum()
        sigma = math.sqrt(abs((w * patch**2).sum() - mu**2))
        assert got[i, j] == pytest.approx((image[i, j] - mu) / (sigma + 1), abs=1e-10)


def _matlab_resize_brute(n, scale, out_len=None):
    """MATLAB imresize rows, by loops: stretched cubic, normalised, mirrored borders.

    ``imresize(x, scale)`` gives ceil(n·scale) rows; ``imresize(x, [out_len ...])`` uses
    scale = out_len / n (pass ``scale=None``)."""

    def cubic(s):
        s = abs(s)
        return (
            1.5 * s**3 - 2.5 * s**2 + 1
            if s <= 1
            else (-0.5 * s**3 + 2.5 * s**2 - 4 * s + 2 if s <= 2 else 0.0)
        )

    if out_len is not None:
        scale = out_len / n
    out = np.zeros((out_len or math.ceil(n * scale), n))
    stretch = min(scale, 1.0)  # the kernel is stretched only when shrinking
    for x in range(1, out.shape[0] + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        taps = {j: stretch * cubic(stretch * (u - j)) for j in range(-3 * n, 4 * n)}
        total = sum(taps.values())
        for j, weight in taps.items():
            k = (j - 1) % (2 * n)  # 0..2n-1 over the sequence 1..n, n..1
            out[x - 1, k if k < n else 2 * n - 1 - k] += weight / total
    return out


def test_resize_matrix_is_matlab_bicubic_antialiased():
    for n in (10, 96):
        np.testing.assert_allclose(
            niqe.resize_matrix(n, 0.5), _matlab_resize_brute(n, 0.5), atol=1e-12
        )
    ramp = niqe.resize_matrix(96, 0.5) @ np.arange(96.0)
    # symmetric taps reproduce a linear ramp away from the borders: out[j] = ramp(2j + 0.5)
    np.testing.assert_allclose(ramp[4:-4], 2 * np.arange(4, 44) + 0.5, atol=1e-12)


def test_matlab_rgb2gray_rounds():
    rgb = np.array([[[10, 20, 30], [255, 255, 255], [1, 2, 0]]], np.uint8)
    expected = [
        round(0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b)
        for r, g, b in rgb[0].astype(float)
    ]
    assert niqe.matlab_rgb2gray(rgb)[0].tolist() == expected


def test_patch_features_layout():
    patch = np.random.RandomState(15).randn(24, 24) + 0.1
    alpha, bl, br = niqe.fit_aggd(patch)
    expected = [alpha, (bl + br) / 2]
    for shift in [(0, 1), (1, 0), (1, 1), (-1, 1)]:  # MATLAB circshift offsets
        shifted = np.roll(np.roll(patch, shift[0], axis=0), shift[1], axis=1)
        alpha, bl, br = niqe.fit_aggd(patch * shifted)
        # AGGD mean η = (β_r − β_l) Γ(2/α) / Γ(1/α)
        expected += [alpha, (br - bl) * gamma(2 / alpha) / gamma(1 / alpha), bl, br]
    np.testing.assert_allclose(niqe.patch_features(patch), expected, rtol=1e-12)


def _texture(shape, seed):
    rng = np.random.RandomState(seed)
    smooth = np.cumsum(np.cumsum(rng.randn(*shape), 0), 1)
    return 255 * (smooth - smooth.min()) / np.ptp(smooth) * 0.6 + rng.rand(*shape) * 60


def _swap_hv(features):
    """Columns of the transposed image: horizontal (0, 1) and vertical (1, 0) groups swap."""
    order = list(range(36))
    for base in (0, 18):
        order[base + 2 : base + 6], order[base + 6 : base + 10] = (
            order[base + 6 : base + 10],
            order[base + 2 : base + 6],
        )
    return features[:, order]


def test_niqe_features_and_invariants():
    image = _texture((192, 288), 10)
    feats = niqe.niqe_features(image)
    assert feats.shape == (6, 36) and np.isfinite(feats).all()
    # scale-2 features are those of MATLAB's half-size image cut into 48×48 patches
    half = niqe.resize_matrix(192, 0.5) @ image @ niqe.resize_matrix(288, 0.5).T
    first = niqe.patch_features(niqe.mscn(half)[:48, :48])
    np.testing.assert_allclose(feats[0, 18:], first)
    # row order is irrelevant; the transpose swaps the horizontal and vertical features
    np.testing.assert_allclose(
        np.sort(_swap_hv(niqe.niqe_features(image.T)), 0), np.sort(feats, 0), rtol=1e-9, atol=1e-12
    )
    # MSCN removes the local mean: adding a constant changes nothing
    np.testing.assert_allclose(niqe.niqe_features(image + 37.0), feats, atol=1e-9)

    rng = np.random.RandomState(11)
    a = rng.randn(36, 36)
    cov = a @ a.T / 36 + np.eye(36)
    assert niqe.niqe(image, feats.mean(0), cov) == pytest.approx(0.0, abs=1e-9)
    mu = feats.mean(0) + rng.randn(36) * 0.1
    d = mu - feats.mean(0)
    expected = math.sqrt(d @ np.linalg.pinv((cov + np.cov(feats, rowvar=False)) / 2) @ d)
    assert niqe.niqe(image, mu, cov) == pytest.approx(expected, rel=1e-9)
    assert niqe.niqe(image.T, _swap_hv(mu[None])[0], cov) != pytest.approx(expected)
    with pytest.raises(ValueError, match="96x192"):
        niqe.niqe(image[:96, :150], mu, cov)


def _niqe_params(tmp_path, suffix):
    rng = np.random.RandomState(12)
    a = rng.randn(36, 36)
    mu, cov = rng.rand(36), a @ a.T / 36 + np.eye(36)
    path = tmp_path / f"niqe_image_params{suffix}"
    if suffix == ".mat":
        from scipy.io import savemat

        savemat(path, {"mu_prisparam": mu[None], "cov_prisparam": cov})
    else:
        np.savez(path, mu_pris_param=mu[None], cov_pris_param=cov)
    return path, mu, cov


def _assert_params(got, mu, cov):
    """Both the mean and the covariance must match (each checked on its own)."""
    np.testing.assert_allclose(got[0], mu)
    np.testing.assert_allclose(got[1], cov)


@pytest.mark.parametrize("suffix", [".mat", ".npz"])
def test_niqe_params_files(tmp_path, suffix):
    path, mu, cov = _niqe_params(tmp_path, suffix)
    _assert_params(niqe.load_niqe_params(path), mu, cov)
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_prisparam=mu[:5])
    with pytest.raises(UserError, match="36"):
        niqe.load_niqe_params(bad)


def test_niqe_params_check_catches_a_wrong_covariance(tmp_path):
    """The check above fails when only the covariance is wrong (it once tested only mu)."""
    path, mu, cov = _niqe_params(tmp_path, ".npz")
    wrong = cov.copy()
    wrong[3, 5] = wrong[5, 3] = wrong[3, 5] + 0.5
    np.savez(path, mu_pris_param=mu[None], cov_pris_param=wrong)
    with pytest.raises(AssertionError):
        _assert_params(niqe.load_niqe_params(path), mu, cov)
    _assert_params(niqe.load_niqe_params(path), mu, wrong)


# ------------------------------------------------------------------ LPIPS
def _fake_alexnet(path):
    import torchvision

    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path, features


def _lpips_direct(features, a, b):
    """LPIPS v0.1 by its definition: Σ_l mean_hw Σ_c w_lc (f̂_a − f̂_b)², f̂ = f / ‖f‖_c at
    AlexNet's five ReLUs, inputs in [-1, 1] standardised by the package's shift and scale."""
    import os

    import lpips

    heads = torch.load(
        os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "alex.pth"),
        map_location="cpu",
        weights_only=True,
    )
    shift = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]

    def relus(x):
        x = (torch.from_numpy(x).float().permute(2, 0, 1)[None] / 127.5 - 1 - shift) / scale
        out = []
        for index, layer in enumerate(features[:12]):  # up to the fifth ReLU
            x = layer(x)
            if index in (1, 4, 7, 9, 11):
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        return sum(
            float((heads[f"lin{i}.model.1.weight"] * (fa - fb) ** 2).sum(1).mean())
            for i, (fa, fb) in enumerate(zip(relus(a), relus(b)))
        )


def test_lpips_loads_local_backbone_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError, match="--lpips_weights.*" + str(tmp_path / "hub")):
        metrics.load_lpips(None)
    path, features = _fake_alexnet(tmp_path / "alex.pth")
    score = metrics.load_lpips(path)
    a, b = _rand((48, 56, 3), 13), _rand((48, 56, 3), 14)
    assert score(a, a) == pytest.approx(0.0, abs=1e-7)
    assert score(a, b) == pytest.approx(_lpips_direct(features.eval(), a, b), rel=1e-5)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth"):
        metrics.load_lpips(tmp_path / "junk.pth")


# ------------------------------------------------------------------ pairing
def test_pairing_understands_test_py_output(tmp_path):
    for name in ("1", "2"):
        _save(tmp_path / "pred" / "images" / f"{name}_fake_B.png", _rand((12, 12, 3), 0))
        _save(tmp_path / "pred" / "images" / f"{name}_real_A.png", _rand((12, 12, 3), 1))
        _save(tmp_path / "gt" / f"{name}.jpg", _rand((12, 12, 3), 2))
    pairs, unpaired = pair_folders(str(tmp_path / "pred"), str(tmp_path / "gt"))
    assert [
        (p.name, p.pred.endswith("1_fake_B.png"), p.input.endswith("_real_A.png")) for p in pairs
    ][:1] == [("1", True, True)]
    assert len(pairs) == 2 and unpaired == {"pred_without_gt": [], "gt_without_pred": []}


def test_pairing_plain_names_missing_and_duplicates(tmp_path):
    for name in ("a", "b", "c"):
        _save(tmp_path / "pred" / f"{name}.png", _rand((12, 12, 3), 0))
    for name in ("a", "b", "d"):
        _save(tmp_path / "gt" / f"{name}.png", _rand((12, 12, 3), 0))
    with pytest.raises(UserError, match="1 predictions without ground truth.*: c"):
        pair_folders(str(tmp_path / "pred"), str(tmp_path / "gt"))
    pairs, unpaired = pair_folders(str(tmp_path / "pred"), str(tmp_path / "gt"), allow_missing=True)
    assert [p.name for p in pairs] == ["a", "b"] and all(p.input is None for p in pairs)
    assert unpaired == {"pred_without_gt": ["c"], "gt_without_pred": ["d"]}
    _save(tmp_path / "gt" / "sub" / "a.png", _rand((12, 12, 3), 0))
    with pytest.raises(UserError, match="same name 'a'"):
        pair_folders(str(tmp_path / "pred"), str(tmp_path / "gt"), allow_missing=True)


# ------------------------------------------------------------------ command line
def _folders(tmp_path, size_b=(20, 16)):
    gt_a, gt_b = _rand((16, 20, 3), 20), _rand((size_b[1], size_b[0], 3), 21)
    _save(tmp_path / "gt" / "a.png", gt_a)
    _save(tmp_path / "gt" / "b.png", gt_b)
    _save(tmp_path / "pred" / "a_fake_B.png", gt_a)  # identical: infinite PSNR
    _save(tmp_path / "pred" / "b_fake_B.png", _rand((16, 20, 3), 22))
    return tmp_path / "pred", tmp_path / "gt"


def _one_error(capsys):
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out.out + out.err
    return lines[0]


def test_cli_report_json_and_table(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    report = tmp_path / "out" / "report.json"
    assert main(["--pred", str(pred), "--gt", str(gt), "--out", str(report)]) == 0
    data = json.loads(report.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert set(data) == {"protocol", "mean", "per_image"}
    assert data["protocol"]["channels"] == "RGB" and data["protocol"]["gt_mean"] is False
    assert [e["name"] for e in data["per_image"]] == ["a", "b"]
    a, b = data["per_image"]
    assert a["psnr"] is None and a["ssim"] == pytest.approx(1.0)  # identical images
    assert b["psnr"] == pytest.approx(
        metrics.psnr(
            np.asarray(Image.open(pred / "b_fake_B.png")), np.asarray(Image.open(gt / "b.png"))
        )
    )
    assert data["mean"]["psnr"] is None
    assert data["mean"]["ssim"] == pytest.approx((a["ssim"] + b["ssim"]) / 2)
    out = capsys.readouterr().out
    assert "PSNR (dB)" in out and "inf" in out and "mean (2)" in out
    assert not (tmp_path / "out" / "index.html").exists()


def test_cli_niqe_with_params_file(tmp_path, capsys):
    gt = _texture((96, 192), 23).astype(np.uint8)
    _save(tmp_path / "gt" / "t.png", np.stack([gt] * 3, -1))
    _save(tmp_path / "pred" / "t.png", np.stack([255 - gt] * 3, -1))
    path, mu, cov = _niqe_params(tmp_path, ".npz")
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "--pred",
                str(tmp_path / "pred"),
                "--gt",
                str(tmp_path / "gt"),
                "--niqe_params",
                str(path),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    entry = json.loads(out.read_text())["per_image"][0]
    assert entry["niqe"] == pytest.approx(niqe.niqe(255.0 - gt, mu, cov))


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--lpips"], ["--lpips_weights", metrics.ALEXNET_FILE]),
        (["--niqe"], ["--niqe_params", "niqe_image_params.mat"]),
    ],
)
def test_cli_missing_weights_one_line(tmp_path, capsys, monkeypatch, extra, needles):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    pred, gt = _folders(tmp_path)
    assert main(["--pred", str(pred), "--gt", str(gt), *extra]) == 2
    line = _one_error(capsys)
    assert all(n in line for n in needles), line


def test_cli_errors(tmp_path, capsys):
    pred, gt = _folders(tmp_path, size_b=(21, 16))
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 2
    line = _one_error(capsys)
    assert "b_fake_B.png is 20x16" in line and "21x16" in line
    assert main(["--pred", str(tmp_path / "nowhere"), "--gt", str(gt)]) == 2
    assert "nowhere" in _one_error(capsys)
    (gt / "a.png").unlink()
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 2
    assert "without ground truth" in _one_error(capsys)


def test_module_entry_point_exit_status(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "nerco.evaluate", "--pred", str(tmp_path), "--gt", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert [line for line in proc.stdout.splitlines() if line.startswith("error:")] == [
        f"error: folder {tmp_path} holds no image: put predicted images "
        f"(.jpg .jpeg .png .ppm .bmp .tif .tiff) in it"
    ]
