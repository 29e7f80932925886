"""Networks: builders for every model family, the text models and tokenizers, hub access and the
Lightning module that trains them. ``build_model`` is the one entry point the stages use."""
from reptopo.nets.build import build_model, check_compatible
from reptopo.nets.vision import count_parameters, example_input

__all__ = ["build_model", "check_compatible", "count_parameters", "example_input"]
