"""The simulated cell: plays the actual system (robot, cameras, calibration board) from the synthetic world.

This is the one place in ``gluecell.cell`` that may run the world (DESIGN.md, "Ground truth stays on
its side"); the pipeline reaches it only through the interfaces a real robot and camera have.
"""
