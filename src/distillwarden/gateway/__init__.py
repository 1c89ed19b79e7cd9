"""gateway part of distillwarden (see DESIGN.md)."""
