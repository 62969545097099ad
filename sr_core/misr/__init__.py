"""Multi-image super-resolution (MISR): simulated revisit stacks, training, evaluation (issue #6).

Submodules: :mod:`.stacks` (pure stack simulation and model-input helpers), :mod:`.train` (trainer and
``s2sr train`` dispatch for MISR configs), :mod:`.evaluate` (``s2sr evaluate --misr``).
"""

from sr_core.archs.highresnet_anchor import AnchorHighResNet
from sr_core.misr.stacks import (
    MISRStack,
    anchor_first,
    cloud_mask,
    fill_invalid,
    shifted_degrade,
    simulate_batch,
    simulate_stack,
    stack_input_10band,
)

__all__ = ["AnchorHighResNet", "MISRStack", "anchor_first", "cloud_mask", "fill_invalid", "shifted_degrade", "simulate_batch",
           "simulate_stack", "stack_input_10band"]
