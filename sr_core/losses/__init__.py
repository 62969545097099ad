"""Training losses: functions first, thin ``nn.Module`` wrappers.

Shared conventions (see :mod:`sr_core.losses._utils`): images ``(N, C, H, W)``; ``mask`` bool, True = valid,
broadcastable to the data; masked-out pixels (NaN nodata included) affect neither value nor gradient;
``reduction="none"`` -> per sample and band ``(N, C)`` (per sample ``(N,)`` for losses without a band axis),
``"mean"`` -> mean over the valid elements; no valid pixel -> 0.

Modules:

* :mod:`.pixel` — masked ``l1_loss`` / ``mse_loss``; PROBA-V ``cl1_loss`` / ``cmse_loss``;
* :mod:`.shift` — ``shift_search``: the brightness-bias corrected best-integer-shift search of cL1 / cMSE (and of
  :func:`sr_core.metrics.cmse` / ``cpsnr`` / ``cssim``);
* :mod:`.ssim` — ``ssim_map`` (Wang et al. 2004, Gaussian 11 / 1.5, valid window), ``masked_ssim_map`` and
  ``ssim_loss`` (1 - SSIM); the metrics' SSIM is computed with them;
* :mod:`.consistency` — ``consistency_loss`` (degradation model), ``pool_consistency_loss``,
  ``ColourMatchingHead`` and ``colour_matched_loss``;
* :mod:`.task` — soft ``dice_loss`` and ``task_dice_loss`` through a frozen task network;
* :mod:`.perceptual` — ``perceptual_loss`` / ``PerceptualLoss`` (content + Gram style) and ``task_feature_loss``;
* :mod:`.adversarial` — RaGAN losses and ``UNetDiscriminator``; :mod:`.filters` — ``gaussian_blur``, ``highpass``;
* :mod:`.weighting` — ``DynamicLossWeighting``.
"""

from sr_core.losses.adversarial import (
    RaGANDiscriminatorLoss,
    RaGANGeneratorLoss,
    UNetDiscriminator,
    ragan_discriminator_loss,
    ragan_generator_loss,
)
from sr_core.losses.consistency import (
    ColourMatchedLoss,
    ColourMatchingHead,
    ConsistencyLoss,
    PoolConsistencyLoss,
    colour_matched_loss,
    consistency_loss,
    pool_consistency_loss,
)
from sr_core.losses.filters import HighPass, gaussian_blur, gaussian_kernel1d, highpass
from sr_core.losses.perceptual import (
    PerceptualLoss,
    TaskFeatureLoss,
    gram_matrix,
    perceptual_loss,
    task_feature_loss,
)
from sr_core.losses.pixel import (
    CL1Loss,
    CMSELoss,
    MaskedL1Loss,
    MaskedMSELoss,
    cl1_loss,
    cmse_loss,
    l1_loss,
    mse_loss,
)
from sr_core.losses.ssim import SSIMLoss, masked_ssim_map, ssim_loss, ssim_map
from sr_core.losses.task import DiceLoss, TaskDiceLoss, dice_loss, task_dice_loss
from sr_core.losses.weighting import DynamicLossWeighting

__all__ = [
    "CL1Loss",
    "CMSELoss",
    "ColourMatchedLoss",
    "ColourMatchingHead",
    "ConsistencyLoss",
    "DiceLoss",
    "DynamicLossWeighting",
    "HighPass",
    "MaskedL1Loss",
    "MaskedMSELoss",
    "PerceptualLoss",
    "PoolConsistencyLoss",
    "RaGANDiscriminatorLoss",
    "RaGANGeneratorLoss",
    "SSIMLoss",
    "TaskDiceLoss",
    "TaskFeatureLoss",
    "UNetDiscriminator",
    "cl1_loss",
    "cmse_loss",
    "colour_matched_loss",
    "consistency_loss",
    "dice_loss",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gram_matrix",
    "highpass",
    "l1_loss",
    "masked_ssim_map",
    "mse_loss",
    "perceptual_loss",
    "pool_consistency_loss",
    "ragan_discriminator_loss",
    "ragan_generator_loss",
    "ssim_loss",
    "ssim_map",
    "task_dice_loss",
    "task_feature_loss",
]
