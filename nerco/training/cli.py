"""Train NeRCo on unpaired low-light (trainA) and normal-light (trainB) images.

    python train.py --dataroot ./dataset/LOL --name LOL
    torchrun --nproc_per_node 4 train.py --dataroot ./dataset/LOL --name LOL   # 4 GPUs

Ctrl-C or SIGTERM saves ``latest`` (weights and training state) and exits; the same command
with ``--continue_train`` resumes exactly. Exit status: 0 done, 1 the run diverged or could
not save (one line says which; the files saved before are intact), 2 bad input, 130 / 143
stopped by SIGINT / SIGTERM after saving. See README.md for the options and NERCO_SPEC.md
for what is computed.
"""

from __future__ import annotations

import logging
import os

from nerco.runtime import UserError, run_command, seed_everything, select_device, setup_logging
from options import TrainOptions, save_options

logger = logging.getLogger("train")


def check_amp(amp: str, device) -> None:
    """Refuse a mixed-precision mode the device cannot run, in one line."""
    import torch

    if amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA GPU (loss scaling); on the CPU use --amp bf16")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(
            f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16 "
            f"support; use --amp fp16"
        )


def main(argv: list[str] | None = None) -> int:
    """train.py: exit status 0 done, 1 diverged or could not save, 2 bad input, 130 / 143
    stopped by SIGINT / SIGTERM after saving."""
    contexts = []  # the process group to leave, once joined

    def train() -> int:
        options = TrainOptions()
        opt = options.parse(argv)  # a bad option: one line, before torch is imported
        save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        # Under torchrun only rank 0 writes train.log and prints progress; the others report
        # warnings and errors.
        if int(os.environ.get("RANK", "0")) == 0:
            setup_logging(os.path.join(save_dir, "train.log"))
            logger.info(save_options(opt, options.parser, save_dir))
        else:
            setup_logging(level=logging.WARNING)
        if opt.seed is not None:
            seed_everything(opt.seed)
        from nerco.training import distributed  # heavy imports after the options are checked

        # This process's GPU becomes the current device before anything else touches CUDA
        # (the bf16 check below, pinned memory), so that no context lands on GPU 0.
        device = distributed.process_device(select_device(opt.gpu_ids))
        check_amp(opt.amp, device)
        from nerco.networks.checkpoint_set import SaveFailed
        from nerco.training.loop import TrainingInterrupted
        from nerco.training.run_guard import TrainingDiverged
        from nerco.training.trainer import Trainer

        contexts.append(distributed.setup(device))
        try:
            Trainer(opt, contexts[0]).run()
        except TrainingInterrupted as stop:
            return 128 + int(stop.signum)  # as a shell reports a process stopped by it
        except (TrainingDiverged, SaveFailed) as failure:
            # The run cannot go on; what was saved before is intact. Under torchrun only
            # the process that saw it first reports it.
            if getattr(failure, "report", True):
                logger.error("error: %s", failure)
            return 1
        return 0

    try:
        return run_command(train, logger.name)
    finally:
        if contexts:
            from nerco.training import distributed

            distributed.teardown(contexts[0])
