"""Synthetic scenes with exact ground truth: analytic ray casting, and a pybullet engine."""
