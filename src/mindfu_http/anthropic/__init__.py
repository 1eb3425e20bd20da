"""The Anthropic Messages API facade."""
