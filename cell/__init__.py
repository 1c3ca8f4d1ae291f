"""gluecell.cell (see DESIGN.md)."""
