"""The pipeline's Hydra apps, one module a stage: ``python -m reptopo <stage> [overrides]``.

Each stage is thin: validate the config, read inputs, call the pure builders of the science
folders, write outputs atomically, log to MLflow.
"""
# Stage name -> module, in pipeline order (reptopo.__main__ dispatches on it).
STAGES = ("train", "activations", "homology", "aggregate", "compare", "reproduction", "pipeline", "experiment",
          "verify")
