"""Hypothesis strategies for information-theoretic objects."""

__all__: list[str] = []
