"""reptopo: topology and geometry of neural-network representations."""

__version__ = "0.1.0"
