"""Command-line options: BaseOptions → TrainOptions / TestOptions (CycleGAN's flag names)."""

from options.base_options import BaseOptions, format_options, save_options
from options.test_options import TestOptions
from options.train_options import TrainOptions

__all__ = ["BaseOptions", "TrainOptions", "TestOptions", "format_options", "save_options"]
