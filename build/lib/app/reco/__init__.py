"""Recommendations: candidates, scoring, strategies, neighbour lists, trending, experiments, cache."""
