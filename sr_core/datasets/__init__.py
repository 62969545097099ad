"""Training and evaluation data from real Sentinel-2 scenes: Wald-protocol patches and whole-scene pairs
(:mod:`.patches`), simulated multi-date revisit stacks (:mod:`.stacks`)."""
