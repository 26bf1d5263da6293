"""Techniques: one sub-package per model, each with its declared contract, training code and data generator."""
