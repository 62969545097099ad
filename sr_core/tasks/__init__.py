"""Task-driven super-resolution: labels (automatic spectral-index masks, OSM rasterisation), small task networks
(U-Net, UNet++) with batch-norm adaptation, their training, and the task-based assessment of SR models
(``s2sr evaluate --tasks``). The task-driven training terms ("dice", "task_feature") and the task-aware patch
selection live in :mod:`sr_core.training.loop` (stage key ``task``)."""

from sr_core.tasks.labels import OSM_TASKS, TASK_NAMES, THRESHOLDS, auto_labels, rasterize_osm
from sr_core.tasks.nets import (
    AdaptiveBatchNorm2d,
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

__all__ = [
    "OSM_TASKS",
    "TASK_NAMES",
    "THRESHOLDS",
    "AdaptiveBatchNorm2d",
    "TaskFeatures",
    "TaskUNet",
    "TaskUNetPlusPlus",
    "adapt_bn_statistics",
    "auto_labels",
    "build_task_net",
    "load_task_net",
    "predict_probs",
    "rasterize_osm",
    "save_task_net",
    "set_bn_mode",
]
