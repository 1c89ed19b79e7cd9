"""forensics part of distillwarden (see DESIGN.md)."""
