"""Test support: service discovery and throw-away service instances (no pytest fixtures here)."""
