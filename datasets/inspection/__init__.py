"""The inspection dataset (``gluecell datasets generate --kind inspection``): UV images, depth, plans, labels."""

from .format import INSPECTION_FORMAT, InspectionDataset, open_inspection

__all__ = ["INSPECTION_FORMAT", "InspectionDataset", "open_inspection"]
