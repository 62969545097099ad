"""Inference: data-cube chunks, single image (:mod:`~sr_core.inference.cube`) and multi-image
(:mod:`~sr_core.inference.misr`), and whole scenes from files (:mod:`~sr_core.inference.scene`)."""
