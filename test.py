"""Enhance images with a trained NeRCo: a dataset's testA folder, or any photos.

    python test.py --dataroot ./dataset/LOL --name LOL
    python test.py --name LOL --input photos/ --output enhanced/ [--gt photos_gt/]

The command's code is :mod:`nerco.inference.cli`; README.md says what it writes and how.
"""

import sys

from nerco.inference.cli import main

if __name__ == "__main__":
    sys.exit(main())
