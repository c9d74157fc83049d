"""Evaluation: metrics used everywhere (training, model card, bag evaluator)."""
