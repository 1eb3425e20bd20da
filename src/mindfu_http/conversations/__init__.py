"""Logged conversations: review, feedback and fine-tuning export (MindFu extensions to the OpenAI API)."""
