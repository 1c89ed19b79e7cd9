"""enforce part of distillwarden (see DESIGN.md)."""
