"""Train NeRCo on unpaired low-light (trainA) and normal-light (trainB) images.

    python train.py --dataroot ./dataset/LOL --name LOL
    torchrun --nproc_per_node 4 train.py --dataroot ./dataset/LOL --name LOL   # 4 GPUs

The command's code is :mod:`nerco.training.cli`; README.md says what it writes and how.
"""

import sys

from nerco.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
