"""The robot link (see :mod:`gluecell.cell.robot.base` for the contract and the flow).

``RosbridgeLink`` (``gluecell.cell.robot.rosbridge``) is the one implementation and the only module that
imports ``roslibpy``; import it from there (it is not imported here, so ``import gluecell.cell.robot`` stays
light).
"""

from .base import (
    ConveyorState,
    ExecutionHandle,
    ExecutionResult,
    GoalReport,
    GoalStatus,
    GunSchedule,
    LinkEvent,
    LinkEventKind,
    RobotLink,
    RobotState,
    TrajectoryErrorCode,
)
from .config import RobotLinkConfig
from .errors import GoalRejectedError, LinkDownError, RobotBusyError, RobotLinkError, RobotTimeoutError

__all__ = [
    "ConveyorState",
    "ExecutionHandle",
    "ExecutionResult",
    "GoalRejectedError",
    "GoalReport",
    "GoalStatus",
    "GunSchedule",
    "LinkDownError",
    "LinkEvent",
    "LinkEventKind",
    "RobotBusyError",
    "RobotLink",
    "RobotLinkConfig",
    "RobotLinkError",
    "RobotState",
    "RobotTimeoutError",
    "TrajectoryErrorCode",
]
