"""Empirical checks of archcost's analytic figures on real tensors (receptive fields by gradients)."""
