"""Probing a trained network: which layers to record, the fixed seeded sample, forward hooks that
pool each layer's output, and adversarial copies of the sample (E5)."""
