"""console part of distillwarden (see DESIGN.md)."""
