"""gluecell.perception (see DESIGN.md)."""
