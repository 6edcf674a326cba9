"""Samplers with known mutual information."""

__all__: list[str] = []
