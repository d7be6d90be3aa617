"""Verification filters: each keeps a row or drops it with a reason; drops go to a rejects file."""
