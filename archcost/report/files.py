"""Kept for old imports: the atomic writer lives in ``archcost.files`` (profile and report both use it)."""

from archcost.files import atomic_path, write_atomic

__all__ = ["atomic_path", "write_atomic"]
