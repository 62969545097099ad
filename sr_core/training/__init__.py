"""Training: one trainer (loop) for single-image models, and the multi-image and task-network trainers."""
