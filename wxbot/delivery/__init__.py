"""The one delivery engine for every message the account sends on its own initiative."""
