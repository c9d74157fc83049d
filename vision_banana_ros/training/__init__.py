"""Distillation training: data stream, teachers, losses, the training loop."""
