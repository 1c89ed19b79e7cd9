"""store part of distillwarden (see DESIGN.md)."""
