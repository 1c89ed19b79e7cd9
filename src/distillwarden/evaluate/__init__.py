"""evaluate part of distillwarden (see DESIGN.md)."""
