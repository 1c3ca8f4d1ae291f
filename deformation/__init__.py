"""gluecell.deformation (see DESIGN.md)."""
