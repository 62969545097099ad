"""Consistency projection towards ``degrade(sr) == lr``: the filters and the numpy projection
(:mod:`~sr_core.projection.filters`, no torch) and the torch layer (:mod:`~sr_core.projection.layer`)."""
