"""gluecell.pathplan (see DESIGN.md)."""
