"""Per-layer analysis of one run and across runs: the descriptors of each probed layer, the tables
the homology and aggregate stages write, and their figures. Arrays and DataFrames in and out; no
files, no tracking."""
