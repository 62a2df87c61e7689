"""``python -m nerco.evaluate``: score enhanced images, one method or several.

    python -m nerco.evaluate --pred results/LOL/test_latest/images --gt dataset/LOL/testB
    python -m nerco.evaluate --pred NeRCo=results/nerco --pred EnlightenGAN=results/egan \\
        --gt testB --input testA --loe --table table.md --html

The command's code is :mod:`nerco.evaluation.cli` (also installed as ``nerco-evaluate``).
"""

import sys

from nerco.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
