"""Bad options stop train.py and test.py at once: exit status 2, one line naming the flag.

The systematic check takes the options from the parsers themselves: every option that takes
a value is either free text (listed below) or checked, and each checked one is run with
values just outside what it allows. A new numeric option with a bare ``type=int`` fails here.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import runpy
import subprocess
import sys

import pytest
from conftest import ROOT, make_image

from nerco.runtime import UserError
from options import TestOptions, TrainOptions, checks, choices
from options.parser import REMOVED_FLAGS
from options.values import Float, GpuIds, Int

PARSERS = {"train.py": TrainOptions, "test.py": TestOptions}
#: Options whose value is free text (paths, names, labels): checked where they are used.
FREE_TEXT = {
    "--dataroot",
    "--name",
    "--checkpoints_dir",
    "--epoch",
    "--suffix",
    "--display_server",
    "--display_env",
    "--clip_weights",
    "--results_dir",
    "--phase",
    "--input",
    "--output",
    "--gt",
}


@pytest.fixture(autouse=True)
def keep_logging():
    """train.py / test.py set up the root logger; give pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_main(script: str, argv: list, capsys) -> tuple[int, list[str]]:
    """``python <script> argv`` in this process: its exit status and its output lines."""
    saved = sys.argv
    sys.argv = [script, *map(str, argv)]
    try:
        with pytest.raises(SystemExit) as stop:
            runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        sys.argv = saved
    out = capsys.readouterr()
    return stop.value.code, (out.out + out.err).splitlines()


def base_args(script: str, tmp_path) -> list[str]:
    """Valid options that stop at the data if a bad value is accepted (no such dataroot)."""
    common = [
        "--dataroot",
        tmp_path / "no_dataset",
        "--checkpoints_dir",
        tmp_path / "saves",
        "--gpu_ids",
        "-1",
    ]
    return common + (
        ["--clip_weights", "random", "--display_id", "0"] if script == "train.py" else []
    )


def value_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.nargs != 0]


def bad_values(action: argparse.Action) -> list[str]:
    """Values the option must refuse, derived from its choices or its type's bounds."""
    kind = action.type
    if action.choices is not None:
        return ["not-a-choice"]
    if isinstance(kind, Int):
        values = ["abc", "1.5", "", "inf" if not kind.infinite else "-inf"]
        values += [str(kind.minimum - 1)] if kind.minimum is not None else []
        values += [str(kind.maximum + 1)] if kind.maximum is not None else []
        return values
    if isinstance(kind, Float):
        values = ["abc", "nan", "inf", "-inf"]
        if kind.minimum is not None:
            values.append(
                repr(kind.minimum if kind.above else math.nextafter(kind.minimum, -math.inf))
            )
        if kind.maximum is not None:
            values.append(
                repr(kind.maximum if kind.below else math.nextafter(kind.maximum, math.inf))
            )
        return values
    if isinstance(kind, GpuIds):
        return ["x", "-2", "0,0", "-1,0", "0,,1"]
    raise AssertionError(f"{action.option_strings[0]}: no bad values known for {kind!r}")


def good_values(action: argparse.Action) -> list[str]:
    """Values at the edge of what the type allows (accepted by the type itself)."""
    kind = action.type
    if isinstance(kind, Int):
        return [str(b) for b in (kind.minimum, kind.maximum) if b is not None] + (
            ["inf"] if kind.infinite else []
        )
    if isinstance(kind, Float):
        low = kind.minimum
        return [] if low is None else [repr(math.nextafter(low, math.inf) if kind.above else low)]
    if isinstance(kind, GpuIds):
        return ["-1", "0", "0,1", "1, 0"]
    return []


def cases():
    for script, options in PARSERS.items():
        for action in value_options(options().build_parser()):
            flag = action.option_strings[0]
            if flag not in FREE_TEXT:
                yield script, action


@pytest.mark.parametrize("script", PARSERS)
def test_every_value_option_is_checked(script):
    """Numbers and names get a checking type or choices; everything else is free text."""
    for action in value_options(PARSERS[script]().build_parser()):
        flag = action.option_strings[0]
        if flag in FREE_TEXT:
            assert action.choices is None and action.type is None, flag
            continue
        assert action.choices is not None or isinstance(action.type, (Int, Float, GpuIds)), (
            f"{script} {flag} takes a value that nothing checks: give it a type from "
            f"options.values (or choices), or list it in FREE_TEXT if it is free text"
        )
        for value in good_values(action):
            action.type(value)  # the edge of the range is allowed


def test_bad_values_of_every_option_give_one_line(tmp_path, capsys):
    """Exit status 2, exactly one line, naming the flag; no traceback, nothing built."""
    tried = 0
    for script, action in cases():
        flag = action.option_strings[0]
        for value in bad_values(action):
            status, lines = run_main(script, base_args(script, tmp_path) + [flag, value], capsys)
            where = f"{script} {flag} {value!r}: {lines}"
            assert status == 2 and len(lines) == 1, where
            assert lines[0].startswith("error: ") and flag in lines[0], where
            assert "Traceback" not in lines[0] and "--help" in lines[0], where
            tried += 1
    assert tried > 150
    assert not (tmp_path / "saves").exists()  # refused before anything was written


def test_removed_flags_point_the_way(tmp_path, capsys):
    for script, options in PARSERS.items():
        known = {s for a in options().build_parser()._actions for s in a.option_strings}
        for flag in REMOVED_FLAGS:
            assert flag not in known, flag
            for given in ([flag, "NeRCo"], [f"{flag}=1"], [flag]):
                status, lines = run_main(script, base_args(script, tmp_path) + given, capsys)
                assert status == 2 and len(lines) == 1, lines
                assert lines[0].startswith(f"error: {flag} was removed"), lines
                assert "drop the flag" in lines[0]


def test_output_folders_that_are_files(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    (tmp_path / "photo.png").write_bytes(b"")
    for script, args, flag in [
        ("train.py", ["--checkpoints_dir", a_file], "--checkpoints_dir"),
        ("train.py", ["--checkpoints_dir", tmp_path, "--name", "a_file"], "--name a_file"),
        ("test.py", ["--results_dir", a_file], "--results_dir"),
        (
            "test.py",
            ["--input", tmp_path / "photo.png", "--output", a_file, "--dataroot", ""],
            "--output",
        ),
    ]:
        status, lines = run_main(script, base_args(script, tmp_path) + args, capsys)
        assert status == 2 and len(lines) == 1 and flag in lines[0], lines
        assert "is a file" in lines[0]


def test_typo_suggests_the_option(tmp_path, capsys):
    status, lines = run_main(
        "train.py", base_args("train.py", tmp_path) + ["--lr_polcy", "step"], capsys
    )
    assert status == 2 and len(lines) == 1 and "did you mean --lr_policy?" in lines[0]


def parse_train(tmp_path, *args) -> argparse.Namespace:
    return TrainOptions().parse([str(a) for a in base_args("train.py", tmp_path) + list(args)])


@pytest.mark.parametrize(
    "args, needles",
    [
        # the cases
        (
            ["--load_size", "40", "--crop_size", "30"],
            ["--crop_size 30", "multiple of 4", "28 or 32"],
        ),
        (["--print_freq", "0"], ["--print_freq", ">= 1"]),
        (["--suffix", "{nope}"], ["--suffix", "{nope} is not an option"]),
        (["--ngf", "0"], ["--ngf", ">= 1"]),
        (["--lr", "-0.1"], ["--lr", "> 0"]),
        (["--n_epochs", "-1"], ["--n_epochs", ">= 0"]),
        # what the preprocess modes need of the sizes, and the discriminators' least size
        (["--load_size", "36", "--crop_size", "20"], ["--crop_size 20", "at least 24", "use 24"]),
        (["--preprocess", "crop", "--crop_size", "22"], ["--crop_size 22", "use 24"]),
        (["--load_size", "256", "--crop_size", "512"], ["--crop_size 512", "--load_size 256"]),
        (
            ["--preprocess", "scale_width_and_crop", "--load_size", "32", "--crop_size", "64"],
            ["--crop_size 64", "--load_size 32"],
        ),
        (["--preprocess", "scale_width", "--load_size", "30"], ["--load_size 30", "28 or 32"]),
        (
            ["--netD", "n_layers", "--n_layers_D", "4", "--load_size", "44", "--crop_size", "44"],
            ["--crop_size 44", "at least 48", "--n_layers_D 4"],
        ),
        # the schedule, the files named
        (["--n_epochs", "0", "--n_epochs_decay", "0"], ["--n_epochs 0 --n_epochs_decay 0"]),
        (
            ["--n_epochs", "2", "--n_epochs_decay", "2", "--epoch_count", "5"],
            ["--epoch_count 5", "last epoch, 4"],
        ),
        (["--clip_weights", "missing.pt"], ["--clip_weights missing.pt", "does not exist"]),
        (["--suffix", "{"], ["--suffix '{'", "not a valid template"]),
        (["--suffix", "{lr:d}"], ["--suffix", "not a valid template"]),
    ],
)
def test_cross_option_checks(tmp_path, args, needles):
    with pytest.raises(UserError) as info:
        parse_train(tmp_path, *args)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    "args",
    [
        [],  # the release's defaults: 512 crops of 512 images
        ["--load_size", "36", "--crop_size", "32"],  # the suite's tiny runs
        ["--load_size", "24", "--crop_size", "24"],
        ["--preprocess", "crop", "--load_size", "8", "--crop_size", "512"],  # crop ignores load
        ["--netD", "pixel", "--load_size", "8", "--crop_size", "8"],
        ["--netD", "n_layers", "--n_layers_D", "1", "--load_size", "8", "--crop_size", "8"],
        ["--netD", "n_layers", "--n_layers_D", "4", "--load_size", "48", "--crop_size", "48"],
        ["--n_epochs", "0", "--n_epochs_decay", "1"],
        ["--n_epochs", "2", "--n_epochs_decay", "2", "--epoch_count", "4"],
        ["--suffix", "{netG}_size{load_size}"],
    ],
)
def test_valid_combinations_are_accepted(tmp_path, args):
    opt = parse_train(tmp_path, *args)
    if "--suffix" in args:
        assert opt.name == "experiment_name_resnet_9blocks_size512"


def _configs():
    return [("basic", 3), ("pixel", 3), ("n_layers", 1), ("n_layers", 2), ("n_layers", 4)]


@pytest.mark.parametrize("netD, n_layers", _configs())
def test_smallest_side_is_what_the_networks_train_on(netD, n_layers):
    """A training step's networks run at the least side and fail one multiple of 4 below."""
    import torch

    from nerco.networks.build import Architecture, build_discriminators, build_generators

    arch = Architecture(ngf=2, ndf=2, netD=netD, n_layers_D=n_layers)
    g, d = build_generators(arch), build_discriminators(arch)

    def runs(side: int) -> bool:
        x = torch.rand(1, 3, side, side) * 2 - 1
        try:
            _, mask = g["H"](x)
            fake = g["G_A"](torch.cat((x, g["Pre"](x)), 1) * mask)
            g["G_B"](fake)
            d["D_A"](fake)
        except (RuntimeError, ValueError):
            return False
        return True

    least = checks.smallest_side(netD, n_layers)
    assert least % 4 == 0 and runs(least) and not runs(least - 4)


def test_torch_free_tables_match_the_modules_that_use_them():
    from data import transforms
    from nerco.networks import build as networks
    from nerco.networks import edge
    from nerco.training import losses, model, schedules

    assert choices.GENERATORS == tuple(networks.GENERATOR_BLOCKS)
    assert choices.DISCRIMINATORS == networks.DISCRIMINATORS
    assert choices.INIT_TYPES == networks.INIT_TYPES
    assert choices.LR_POLICIES == schedules.LR_POLICIES
    assert choices.GAN_MODES == losses.GAN_MODES
    assert choices.OBJECTIVES == model.OBJECTIVES
    assert choices.EDGE_FILTERS == tuple(edge.EDGE_FILTERS)
    assert choices.PREPROCESS_CHOICES == transforms.PREPROCESS_CHOICES
    assert choices.LOSS_WEIGHTS == dataclasses.asdict(losses.LossWeights())
    for norm in choices.NORMS:
        networks.get_norm_layer(norm)
    parser = TrainOptions().build_parser()
    for name, value in choices.LOSS_WEIGHTS.items():
        assert parser.get_default(name) == value
    assert parser.get_default("edge_filter") == edge.DEFAULT_EDGE_FILTER == "gradient"


def test_edge_filter_reaches_the_model(tmp_path, monkeypatch):
    """--edge_filter names the model's edge operator; the default is the release's."""
    from nerco.training import trainer

    built = []

    def model(*args, **kwargs):
        built.append(kwargs["edge_filter"])
        raise UserError("stop here")

    monkeypatch.setattr(trainer, "NeRCoModel", model)
    monkeypatch.setattr(trainer, "CLIPTerm", lambda *args, **kwargs: None)
    monkeypatch.setattr(trainer.Trainer, "_build_clip", lambda self: None)
    argv = [
        "--dataroot",
        str(_dataset(tmp_path, [(36, 36)], [(36, 36)])),
        *(
            "--clip_weights random --gpu_ids -1 --display_id 0 --load_size 36 "
            "--crop_size 32 --num_threads 0"
        ).split(),
    ]
    for extra in ([], ["--edge_filter", "sobel"], ["--edge_filter", "laplacian"]):
        with pytest.raises(UserError, match="stop here"):
            trainer.Trainer(TrainOptions().parse(argv + extra))
    assert built == ["gradient", "sobel", "laplacian"]
    with pytest.raises(UserError, match=r"--edge_filter: invalid choice: 'prewitt'"):
        TrainOptions().parse(argv + ["--edge_filter", "prewitt"])


# ----------------------------------------------------------------------------- image sizes


def _dataset(root, a_sizes, b_sizes):
    for i, size in enumerate(a_sizes):
        make_image(root / "trainA" / f"a{i}.png", size, seed=i)
    for i, size in enumerate(b_sizes):
        make_image(root / "trainB" / f"b{i}.png", size, seed=10 + i)
    return root


def _parse_data(root, *args):
    return TrainOptions().parse(
        ["--dataroot", str(root), "--clip_weights", "random", *map(str, args)]
    )


def test_batch_of_whole_images_needs_one_size(tmp_path):
    """The issue's case: --batch_size 2 --preprocess none, images of two sizes."""
    root = _dataset(tmp_path, [(36, 36), (40, 32)], [(36, 36)])
    with pytest.raises(UserError) as info:
        _parse_data(root, "--batch_size", "2", "--preprocess", "none")
    message = str(info.value)
    assert "a0.png becomes 36x36" in message and "a1.png becomes 40x32" in message, message
    assert "--batch_size 2" in message and "--preprocess none" in message


def test_whole_images_that_round_to_one_size_are_accepted(tmp_path):
    # 37x23 and 35x25 round to 36x24 (multiples of 4, as the transform does)
    root = _dataset(tmp_path, [(37, 23), (36, 24)], [(35, 25)])
    _parse_data(root, "--batch_size", "2", "--preprocess", "none")


def test_pairs_of_whole_images_need_one_size_even_in_batches_of_one(tmp_path):
    """The mask of real_A gates real_B: A and B meet, so their sizes must agree."""
    root = _dataset(tmp_path, [(36, 36)], [(40, 32)])
    with pytest.raises(UserError, match="b0.png becomes 40x32"):
        _parse_data(root, "--preprocess", "none")
    # with --serial_batches only A[i] and B[i] meet
    paired = _dataset(tmp_path / "paired", [(36, 36), (40, 32)], [(36, 36), (40, 32)])
    _parse_data(paired, "--preprocess", "none", "--serial_batches")
    crossed = _dataset(tmp_path / "crossed", [(36, 36), (40, 32)], [(40, 32), (36, 36)])
    with pytest.raises(
        UserError, match="with --serial_batches .*a0.png becomes 36x36 but .*b0.png becomes 40x32"
    ):
        _parse_data(crossed, "--preprocess", "none", "--serial_batches")


def test_scale_width_sizes_from_the_headers(tmp_path):
    # width 48: 60x40 and 90x60 → 48x32; 60x45 → 48x36; 60x50 → 48x40
    same = _dataset(tmp_path / "same", [(60, 40), (90, 60)], [(60, 40)])
    _parse_data(
        same,
        *"--preprocess scale_width --load_size 48 --crop_size 24 --batch_size 2".split(),
    )
    mixed = _dataset(tmp_path / "mixed", [(60, 40)], [(60, 45)])
    with pytest.raises(UserError, match="b0.png becomes 48x36"):
        _parse_data(mixed, "--preprocess", "scale_width", "--load_size", "48", "--crop_size", "24")
    # crop_size is scale_width's least height: 60x20 → 48x24 (not 48x16)
    tall = _dataset(tmp_path / "least", [(60, 20)], [(48, 24)])
    _parse_data(tall, "--preprocess", "scale_width", "--load_size", "48", "--crop_size", "24")
    odd = _dataset(tmp_path / "odd", [(50, 40)], [(50, 40)])  # → 48x38
    with pytest.raises(UserError, match="a0.png becomes 48x38.*multiples of 4"):
        _parse_data(odd, "--preprocess", "scale_width", "--load_size", "48", "--crop_size", "24")


def test_cropping_modes_do_not_read_the_images(tmp_path):
    root = _dataset(tmp_path, [(36, 36), (40, 32)], [(90, 20)])
    _parse_data(root, "--batch_size", "2", "--load_size", "36", "--crop_size", "32")


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    "script, args, needle",
    [
        ("train.py", ["--load_size", "40", "--crop_size", "30"], "--crop_size 30"),
        ("train.py", ["--print_freq", "0"], "--print_freq"),
        ("train.py", ["--suffix", "{nope}"], "--suffix"),
        ("train.py", ["--ngf", "abc"], "--ngf"),  # argparse's own error: no usage block
        ("train.py", ["--model", "cycle_gan"], "--model"),
        ("test.py", ["--num_test", "0"], "--num_test"),
        ("test.py", ["--amp", "fp32"], "--amp"),
        ("test.py", ["--suffix", "{size}"], "--suffix"),
    ],
)
def test_commands_refuse_before_importing_torch(tmp_path, script, args, needle):
    """As a user runs them; the refusal comes before torch (and CLIP, the networks) load."""
    argv = [script, *map(str, base_args(script, tmp_path)), *args]
    probe = (
        f"import runpy, sys; sys.argv = {argv!r}\n"
        f"try:\n    runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n"
        f"except SystemExit as stop:\n"
        f"    print('exit', stop.code, 'torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    assert lines[-1] == "exit 2 False", lines
    assert len(lines) == 2 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_gpu_ids_several_gpus_says_one_is_used(monkeypatch, caplog):
    import torch

    from nerco.runtime import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with caplog.at_level(logging.INFO, logger="nerco.runtime"):
        assert select_device("2,3") == torch.device("cuda", 2)
    [record] = caplog.records
    assert "only GPU 2 is used" in record.getMessage()
    assert "torchrun --nproc_per_node 2" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nerco.runtime"):
        assert select_device("1") == torch.device("cuda", 1)
    assert not caplog.records
    with pytest.raises(UserError, match="--gpu_ids 0,4: GPU 4 does not exist"):
        select_device("0,4")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with caplog.at_level(logging.INFO, logger="nerco.runtime"):
        select_device("2,3")
    assert "LOCAL_RANK" in caplog.records[0].getMessage()
