"""gluecell.datasets (see DESIGN.md)."""
