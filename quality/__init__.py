"""gluecell.quality: glue inspection from UV image + depth, the QA network and its ML workflow (DESIGN.md).

The cell calls :func:`inspect` once per sprayed part. Everything else (training, evaluation, export, the
registry) is for the ML engineers and is imported lazily by the ``gluecell qa`` commands.
"""

from .inspect import inspect
from .policy import VerdictPolicy

__all__ = ["inspect", "VerdictPolicy"]
