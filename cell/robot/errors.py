"""Errors of the robot link, rooted at :class:`gluecell.cell.errors.CellError`."""

from __future__ import annotations

from gluecell.core.errors import DeviceError, DeviceTimeoutError

from ..errors import CellError

__all__ = ["RobotLinkError", "LinkDownError", "RobotTimeoutError", "GoalRejectedError", "RobotBusyError"]


class RobotLinkError(CellError, DeviceError):
    """The robot link failed (transport, protocol or robot side)."""


class LinkDownError(RobotLinkError):
    """No connection to the rosbridge server (never connected, closed, or the heartbeat was lost)."""


class RobotTimeoutError(RobotLinkError, DeviceTimeoutError):
    """A blocking link call did not finish within its timeout."""


class GoalRejectedError(RobotLinkError):
    """The robot side refused a goal or a request (``diagnostics['error_code']`` holds the standard code)."""


class RobotBusyError(RobotLinkError):
    """A goal is still executing; the link runs one goal at a time (a second would preempt the first)."""
