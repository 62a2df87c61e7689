"""train.py as torchrun runs it, leaving each rank's weights behind for the tests.

    python -m torch.distributed.run ... tests/torchrun_worker.py OUT_DIR <train.py options>

Each process writes ``OUT_DIR/rank<R>.pt`` (its seed and every network's weights, whatever
ended the run), ``OUT_DIR/rank<R>.pid`` at start and ``OUT_DIR/rank<R>.exit`` (train.py's
exit status), so that a test can check that the processes trained the same weights.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import train  # noqa: E402
from nerco.networks.checkpoint import cpu_state_dict  # noqa: E402
from nerco.training.trainer import Trainer  # noqa: E402


def main() -> int:
    out, args = Path(sys.argv[1]), sys.argv[2:]
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))
    run = Trainer.run

    def run_and_dump(self: Trainer) -> None:
        try:
            run(self)
        finally:
            nets = {name: cpu_state_dict(net) for name, net in self.model.networks().items()}
            torch.save(
                {"seed": self.seed, "total_iters": self.total_iters, "nets": nets},
                out / f"rank{rank}.pt",
            )

    Trainer.run = run_and_dump
    code = train.main(args)
    (out / f"rank{rank}.exit").write_text(str(code))
    return code


if __name__ == "__main__":
    sys.exit(main())
