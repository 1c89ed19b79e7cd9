"""watermark part of distillwarden (see DESIGN.md)."""
