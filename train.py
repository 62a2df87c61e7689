"""Train NeRCo on unpaired low-light (trainA) and normal-light (trainB) images.

    python train.py --dataroot ./dataset/LOL --name LOL

See README.md for the options; NERCO_SPEC.md for what is computed.
"""

from __future__ import annotations

import logging
import os
import sys

from nerco.errors import UserError
from nerco.runtime import seed_everything, select_device, setup_logging
from options import TrainOptions, save_options

logger = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    setup_logging(os.path.join(save_dir, "train.log"))
    try:
        logger.info(save_options(opt, options.parser, save_dir))
        if opt.seed is not None:
            seed_everything(opt.seed)
        device = select_device(opt.gpu_ids)
        from nerco.trainer import Trainer  # heavy imports after the options are checked

        Trainer(opt, device).run()
    except UserError as err:
        logger.error("error: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
