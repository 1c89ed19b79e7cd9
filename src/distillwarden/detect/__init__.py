"""detect part of distillwarden (see DESIGN.md)."""
