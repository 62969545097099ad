"""Task-driven super-resolution: labels (automatic spectral-index masks, OSM rasterisation, :mod:`.labels`), small
task networks (U-Net, UNet++) with batch-norm adaptation and channel / feature views (:mod:`.nets`), and the task
relevance of patches (:mod:`.scores`).

Users: the task-network trainer (:mod:`sr_core.training.tasks`), the task-driven training terms and the task-aware
patch selection of the single-image trainer (:mod:`sr_core.training.sisr`, stage key ``task``) and the task-based
assessment of SR models (:mod:`sr_core.evaluation.tasks`, ``s2sr evaluate --tasks``)."""

from sr_core.tasks.labels import OSM_TASKS, TASK_NAMES, THRESHOLDS, auto_labels, rasterize_osm
from sr_core.tasks.nets import (
    AdaptiveBatchNorm2d,
    TaskChannels,
    TaskFeatures,
    TaskUNet,
    TaskUNetPlusPlus,
    adapt_bn_statistics,
    build_task_net,
    load_task_net,
    predict_probs,
    save_task_net,
    set_bn_mode,
)
from sr_core.tasks.scores import mask_boundaries, task_patch_scores

__all__ = [
    "OSM_TASKS",
    "TASK_NAMES",
    "THRESHOLDS",
    "AdaptiveBatchNorm2d",
    "TaskChannels",
    "TaskFeatures",
    "TaskUNet",
    "TaskUNetPlusPlus",
    "adapt_bn_statistics",
    "auto_labels",
    "build_task_net",
    "load_task_net",
    "mask_boundaries",
    "predict_probs",
    "rasterize_osm",
    "save_task_net",
    "set_bn_mode",
    "task_patch_scores",
]
