"""Run one reptopo stage: python -m reptopo <stage> [hydra overrides] (or: reptopo <stage> ...).

Stages (src/reptopo/stages/<stage>.py):
  train         fit the model on the dataset (Lightning, seeded)
  activations   run the fixed seeded sample through it and dump the probed layers
  homology      per layer: PHdim, lifespans sums, diagrams, Betti curves, TwoNN/MLE
  aggregate     tables and figures across runs (and a paper experiment's finding checks)
  compare       two runs of the same sample, layer by layer: CKA, RTD, k-NN overlap, diagram distances
  reproduction  reports/<scale>/REPRODUCTION.md from the finished paper experiments
  pipeline      train -> activations -> homology for one run (the unit of sweeps: -m)
  experiment    a paper experiment: its Hydra multiruns, then its aggregate
  verify        rerun the paper and compare its findings with the committed reports
Everything after the stage name goes to Hydra, e.g.
  python -m reptopo train model=vgg_small data=digits train.max_epochs=3
  python -m reptopo pipeline -m model=resnet_small,vgg_small data=fashion_mnist
"""
from __future__ import annotations

import faulthandler
import importlib
import sys

from reptopo.stages import STAGES

USAGE = f"usage: python -m reptopo {{{','.join(STAGES)}}} [hydra overrides ...]"


def main(argv: list[str] | None = None) -> None:
    # A native crash while the stage imports or composes its config names its Python frame too
    # (runtime.cli.run_stage enables the same for the stage itself and for multirun workers).
    faulthandler.enable(all_threads=True)
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or "").strip())
        sys.exit(0 if len(argv) >= 2 else 2)
    stage = argv[1]
    if stage not in STAGES:
        print(f"reptopo: error: unknown stage {stage!r}; expected one of {', '.join(STAGES)}", file=sys.stderr)
        sys.exit(2)
    # Hydra parses sys.argv[1:], so the stage name leaves it.
    sys.argv = [argv[0], *argv[2:]]
    importlib.import_module(f"reptopo.stages.{stage}").main()


if __name__ == "__main__":
    main()
