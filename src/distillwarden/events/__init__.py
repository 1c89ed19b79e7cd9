"""events part of distillwarden (see DESIGN.md)."""
