"""``python -m nerco.demo_data``: build the offline demo dataset.

    python -m nerco.demo_data --out dataset/demo

The builder is :mod:`data.demo` (its sRGB and sensor-noise model is reusable as
augmentation); also installed as ``nerco-demo-data``.
"""

import sys

from data.demo import main

if __name__ == "__main__":
    sys.exit(main())
