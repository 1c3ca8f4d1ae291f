"""gluecell.quality (see DESIGN.md)."""
