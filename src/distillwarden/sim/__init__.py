"""sim part of distillwarden (see DESIGN.md)."""
