"""What every stage runs on: the config schema and its choice registry, config hashes and output
stamps, the CLI error exit, thread caps, atomic I/O, MLflow tracking and the Hydra callback.

Nothing here does science; the science folders (topology, datasets, nets, probing, analysis,
paper) may use ``errors``, ``io`` and ``choices``, never ``tracking`` or a stage.
"""
