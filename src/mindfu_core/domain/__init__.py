"""Domain types of MindFu: frozen dataclasses and enums, no behaviour beyond their own invariants."""
