"""``python -m nerco.export``: write the enhancer as ONNX or TorchScript, checked.

    python -m nerco.export --checkpoint_dir saves/LOL --epoch latest --output enhancer.onnx

The command's code is :mod:`nerco.inference.export` (also installed as ``nerco-export``).
"""

import sys

from nerco.inference.export import main

if __name__ == "__main__":
    sys.exit(main())
