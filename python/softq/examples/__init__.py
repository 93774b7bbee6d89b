"""Example environments for softq.actor, pure Python and numpy (no simulator)."""
