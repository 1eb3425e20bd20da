"""Factories the container's providers call, by area (kept out of the container to keep it readable)."""
