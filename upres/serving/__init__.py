"""Serving upres tile models from other engines' servers (Triton Inference Server)."""
