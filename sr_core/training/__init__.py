"""Training: the stage loop (:mod:`.loop`) with its single-image (:mod:`.sisr`) and multi-image (:mod:`.misr`)
variants and their configs (:mod:`.config`, :class:`~sr_core.training.misr.MISRTrainConfig`); the task-network
trainer (:mod:`.tasks`)."""
