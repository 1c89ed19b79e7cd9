"""upstream part of distillwarden (see DESIGN.md)."""
