"""OpenAI wire format: request models, response builders and the /v1 routes."""
