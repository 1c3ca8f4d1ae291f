"""The robot link: the one interface through which the controller drives the cell's robot, gun and conveyor.

The real implementation is :class:`gluecell.cell.robot.rosbridge.RosbridgeLink` (the only module that imports
``roslibpy``); the embedded default talks to the simulated cell (``gluecell sim``), which speaks the same
rosbridge v2 protocol, so one client serves both a real UR10e behind ``rosbridge_server`` and the simulation.

How the orchestrator uses it
----------------------------
* **Lifecycle.** ``with RosbridgeLink(cfg) as link:`` (or ``connect()`` / ``disconnect()``). ``connect``
  retries with exponential backoff until ``connect_timeout_s``; afterwards the transport reconnects by itself.
  ``is_connected`` is False from the moment the link is lost: the heartbeat is ``/joint_states`` (the UR driver
  publishes it at 500 Hz, the simulated cell at 50 Hz); silence longer than ``heartbeat_timeout_s`` (0.5 s) or a
  closed socket counts as lost, so a dead link is noticed within 1 s. Every blocking call takes ``timeout_s``
  and raises :class:`~gluecell.cell.robot.errors.RobotTimeoutError` (a ``TimeoutError``); a call while the
  link is down raises :class:`~gluecell.cell.robot.errors.LinkDownError` at once.
* **Events.** ``add_listener(fn)`` registers ``fn(LinkEvent)``; events (link lost / restored, robot error /
  cleared, e-stop pressed / released, an item at the infeed) are delivered in order from one dispatcher
  thread, never from the transport thread, so a listener may call the link (briefly) without deadlocking.
  The PackML mapping is the orchestrator's: LINK_LOST or ROBOT_ERROR -> Held, ESTOP -> Aborted. The first
  LINK_RESTORED comes during ``connect`` (before a listener added after it can see it).
* **Work-item id at the infeed.** The barcode/RFID reader at the scan station publishes the pair's id as
  ``std_msgs/String`` on ``infeed_topic`` (default ``/gluecell/infeed/barcode``). ``wait_item(timeout_s)``
  returns the next id read (a queue: none is lost between calls); each also arrives as an ``ITEM`` event. The
  id is only a key: the style, size and side come from the job order (an id nobody ordered is the
  orchestrator's to refuse). ``index_conveyor(timeout_s)`` moves the line one step (spray station -> next
  station, scan station -> spray station, the next pair -> scan station; ``std_srvs/Trigger`` on
  ``conveyor_service``) and returns the new :class:`ConveyorState`; its ``seated`` flag is the spray
  station's part-present/seat sensor. Interlocks: the conveyor refuses to move while a goal runs, and a goal
  is refused while the conveyor moves.
* **Scans.** Cameras are not on ROS (RealSense is USB on the controller). The simulated cell writes what its
  virtual cameras see of the pair at the scan station into ``<camera_root>/<item_id>/`` (``gluecell.frame/1``
  files, renamed into place complete, so the folder is either whole or absent); the controller's perception
  reads it with its ``sim:`` source (``sim:<camera_root>/<item_id>``). ``camera_root`` comes from the sim's
  latched topic ``/gluecell_sim/camera_root`` (``link.camera_root``) or from configuration; a camera timeout
  is a folder that does not appear in time (:func:`gluecell.cell.robot.cameras.wait_for_frames`).
* **Executing a program.** ``execute(program, goal_id=..., timeout_s=...)`` first arms the gun schedule (the
  program's ``gun_events``) for that goal id, then sends the ``FollowJointTrajectory`` goal, waits until it is
  accepted or refused, and returns an :class:`ExecutionHandle` (``wait``, ``cancel``, ``progress_s``). With
  ``approach=True`` (default) the current joint position is prepended and the first point is reached at
  ``approach_speed_fraction`` of the joint speed limits; the gun schedule is shifted by the approach time.
  The caller chooses ``goal_id`` (e.g. ``"<item>:<part>:<attempt>"``) and stores it with its intent *before*
  calling; after a controller restart ``goal_status(goal_id)`` asks the robot side what became of it
  (EXECUTING: wait or cancel; SUCCEEDED: the spray happened, record it; ABORTED/CANCELED: it did not
  finish; UNKNOWN: it never arrived). One goal runs at a time: a second ``execute`` while one runs raises
  :class:`~gluecell.cell.robot.errors.RobotBusyError` (on the robot a new goal would preempt the running one),
  and an id that is still running on the robot side is refused (use a new attempt number).

Gun timing (why not service calls)
----------------------------------
At 300-460 mm/s, 10 ms of latency is 3-5 mm of glue, and a client that calls ``set_io`` when feedback says
the path has reached a switching point is late by the feedback period (UR driver: 50 ms by default, rosbridge
adds its own throttling) plus a websocket round trip plus the IO write: tens of milliseconds, varying, i.e.
5-25 mm of misplaced glue. So the switching times travel *with* the goal: before the goal, the link arms the
schedule (``gun_schedule_service``: goal id, pin, event times on the trajectory clock, and a digest of the
trajectory it belongs to); the robot side switches the output on its own control tick at trajectory time
(the simulated cell: its 500 Hz controller tick, on the scaled trajectory clock, so a speed-scaled or paused
trajectory keeps the glue where it belongs). A goal whose trajectory does not match the armed digest is
refused. On a real UR the same contract is met controller-side, by either (a) a URScript program that the
companion node generates per goal (``movej``/``servoj`` along the points with ``set_standard_digital_out``
between them, sent through ``/urscript_interface/script_command``), or (b) a ros2_control GPIO controller
chained to the scaled joint trajectory controller that reads the trajectory's current time each 2 ms cycle
and writes the tool output through the same hardware interface. Both switch within one controller cycle
(2 ms, < 1 mm at 460 mm/s). ``set_gun(on)`` (``ur_msgs/srv/SetIO`` on ``set_io_service``) remains for
manual mode, purging and switching the gun off for safety. ``gluecell bench`` measures the switching error
of both approaches in mm.

Goal reconciliation: the same robot-side companion keeps the armed goals (``goal_status_service``), since
rosbridge goal ids are not visible to ROS; the simulated cell implements it.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from gluecell.core.types import RobotProgram

from .errors import RobotTimeoutError

__all__ = [
    "ConveyorState",
    "ExecutionHandle",
    "ExecutionResult",
    "GoalReport",
    "GoalStatus",
    "GunSchedule",
    "LinkEvent",
    "LinkEventKind",
    "RobotLink",
    "RobotState",
    "TrajectoryErrorCode",
]


class GoalStatus(enum.IntEnum):
    """``action_msgs/GoalStatus`` values (as rosbridge sends them in ``action_result.status``)."""

    UNKNOWN = 0
    ACCEPTED = 1
    EXECUTING = 2
    CANCELING = 3
    SUCCEEDED = 4
    CANCELED = 5
    ABORTED = 6

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED, CANCELED and ABORTED."""
        return self in (GoalStatus.SUCCEEDED, GoalStatus.CANCELED, GoalStatus.ABORTED)


class TrajectoryErrorCode(enum.IntEnum):
    """``control_msgs/action/FollowJointTrajectory`` result ``error_code``."""

    SUCCESSFUL = 0
    INVALID_GOAL = -1
    INVALID_JOINTS = -2
    OLD_HEADER_TIMESTAMP = -3
    PATH_TOLERANCE_VIOLATED = -4
    GOAL_TOLERANCE_VIOLATED = -5


class LinkEventKind(enum.Enum):
    """What a :class:`LinkEvent` reports."""

    LINK_LOST = "link_lost"
    LINK_RESTORED = "link_restored"
    ROBOT_ERROR = "robot_error"
    ROBOT_ERROR_CLEARED = "robot_error_cleared"
    ESTOP = "estop"
    ESTOP_RELEASED = "estop_released"
    ITEM = "item"


@dataclass(frozen=True)
class LinkEvent:
    """One event of the link. ``t``: ``time.monotonic()`` when noticed; ``detail``: human-readable reason;
    ``item_id``: for ITEM events."""

    kind: LinkEventKind
    t: float
    detail: str = ""
    item_id: str | None = None


@dataclass(frozen=True)
class RobotState:
    """The robot as last reported (``/joint_states`` + ``/robot_status``).

    Attributes:
        t: ``time.monotonic()`` of the newest message.
        joint_names: in the order of ``q``.
        q: (6,) float64 radians; qd: (6,) float64 rad/s (zeros when not reported).
        e_stopped, in_error, motion_possible, in_motion, drives_powered: RobotStatus TriStates as bools
            (unknown -> False, except ``e_stopped``/``in_error`` where unknown -> True: fail safe).
        error_code: the robot's own error code (0 = none).
        gun_on: the gun's digital output as last reported (None when not reported).
    """

    t: float
    joint_names: tuple[str, ...]
    q: np.ndarray
    qd: np.ndarray
    e_stopped: bool
    in_error: bool
    motion_possible: bool
    in_motion: bool
    drives_powered: bool
    error_code: int = 0
    gun_on: bool | None = None


@dataclass(frozen=True)
class GunSchedule:
    """When the gun switches, on the trajectory's clock.

    Attributes:
        events: ((time_s, on), ...) seconds from the trajectory's start, sorted, finite.
        pin: digital output (``ur_msgs/srv/SetIO``: 0-7 standard, 8-15 configurable, 16-17 tool).
    """

    events: tuple[tuple[float, bool], ...] = ()
    pin: int = 0

    def __post_init__(self) -> None:
        times = [float(t) for t, _ in self.events]
        if any(not np.isfinite(t) or t < 0 for t in times) or times != sorted(times):
            from gluecell.core.errors import ValidationError

            raise ValidationError("gun schedule: event times must be finite, >= 0 and sorted")
        if not 0 <= self.pin <= 17:
            from gluecell.core.errors import ValidationError

            raise ValidationError(f"gun schedule: pin must be 0-17, got {self.pin}")

    @classmethod
    def from_program(cls, program: RobotProgram, pin: int = 0) -> GunSchedule:
        """The schedule a :class:`RobotProgram` carries (its ``gun_events``)."""
        return cls(tuple((float(t), bool(on)) for t, on in program.gun_events), pin)

    def shifted(self, dt: float) -> GunSchedule:
        """The same schedule ``dt`` seconds later (an approach move prepended to the trajectory)."""
        return GunSchedule(tuple((t + dt, on) for t, on in self.events), self.pin)


@dataclass(frozen=True)
class ExecutionResult:
    """How a goal ended.

    Attributes:
        goal_id: the caller's id.
        status: terminal :class:`GoalStatus` (ABORTED also for a refused goal).
        error_code: the trajectory controller's code (:class:`TrajectoryErrorCode` value, or another int).
        error_string: the robot side's reason ("" on success).
        duration_s: wall seconds from acceptance to result (accelerated sim: shorter than the trajectory).
    """

    goal_id: str
    status: GoalStatus
    error_code: int
    error_string: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """SUCCEEDED with error code SUCCESSFUL."""
        return self.status == GoalStatus.SUCCEEDED and self.error_code == TrajectoryErrorCode.SUCCESSFUL


@dataclass(frozen=True)
class GoalReport:
    """What the robot side knows of a goal (``goal_status``), for reconciliation after a restart.

    Attributes:
        goal_id: the caller's id.
        status: UNKNOWN when the robot side never saw it.
        progress_s: trajectory time reached (s).
        duration_s: the trajectory's length (s).
        gun_switches: gun switching events executed so far.
        error_code: as in :class:`ExecutionResult` (0 while running).
    """

    goal_id: str
    status: GoalStatus
    progress_s: float = 0.0
    duration_s: float = 0.0
    gun_switches: int = 0
    error_code: int = 0


@dataclass(frozen=True)
class ConveyorState:
    """Which pair is where (``None``: the position is empty).

    Attributes:
        at_scan: item at the scan station (its barcode was read there).
        at_spray: item at the spray stations (upper and sole fixtures).
        seated: the spray station's seat sensor: the pair sits on its fixtures.
    """

    at_scan: str | None
    at_spray: str | None
    seated: bool = True


@dataclass
class ExecutionHandle:
    """A running goal. Filled by the link's transport thread; read and waited on by the caller."""

    goal_id: str
    duration_s: float
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _result: ExecutionResult | None = field(default=None, repr=False)
    _cancel: Callable[[], None] | None = field(default=None, repr=False)
    progress_s: float = 0.0

    def done(self) -> bool:
        """True once the result arrived."""
        return self._done.is_set()

    def wait(self, timeout_s: float) -> ExecutionResult:
        """Block until the result arrives.

        Raises:
            RobotTimeoutError: not finished within ``timeout_s`` (the goal keeps running; cancel it if needed).
        """
        if not self._done.wait(timeout_s):
            raise RobotTimeoutError(f"goal {self.goal_id} not finished within {timeout_s:.1f} s", stage="execute")
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Ask the robot side to cancel (the result then arrives with status CANCELED)."""
        if self._cancel is not None and not self.done():
            self._cancel()

    def _finish(self, result: ExecutionResult) -> None:
        if not self._done.is_set():
            self._result = result
            self._done.set()


@runtime_checkable
class RobotLink(Protocol):
    """The robot, gun and conveyor as the controller sees them (see the module docstring for the flow)."""

    @property
    def is_connected(self) -> bool:
        """True while the transport is open and the heartbeat is fresh."""
        ...

    @property
    def camera_root(self) -> str | None:
        """Folder of the simulated cameras' frames (``<root>/<item_id>/``), None on a real line."""
        ...

    @property
    def conveyor(self) -> ConveyorState:
        """The conveyor's last reported positions (latched: right after ``connect`` it is the line's own report,
        which a restarted controller trusts over its memory)."""
        ...

    def connect(self, timeout_s: float | None = None) -> None:
        """Connect with retry and backoff; raises RobotTimeoutError when not connected within the timeout."""
        ...

    def disconnect(self) -> None:
        """Close the connection (safe to call twice). A running goal is NOT cancelled by this."""
        ...

    def __enter__(self) -> RobotLink: ...

    def __exit__(self, *exc: object) -> None: ...

    def add_listener(self, callback: Callable[[LinkEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that removes it."""
        ...

    def state(self, timeout_s: float = 1.0) -> RobotState:
        """The newest robot state; waits up to ``timeout_s`` for the first one after connecting."""
        ...

    def execute(
        self, program: RobotProgram, *, goal_id: str, gun: GunSchedule | None = None, approach: bool = True,
        timeout_s: float = 5.0,
    ) -> ExecutionHandle:  # fmt: skip
        """Arm the gun schedule (default: the program's) and send the trajectory; returns once accepted.

        Raises:
            GoalRejectedError: refused (``error_code`` in diagnostics); RobotBusyError: a goal is running;
            LinkDownError; RobotTimeoutError: no answer within ``timeout_s``.
        """
        ...

    def goal_status(self, goal_id: str, timeout_s: float = 2.0) -> GoalReport:
        """What the robot side knows of ``goal_id`` (UNKNOWN when it never arrived)."""
        ...

    def set_gun(self, on: bool, timeout_s: float = 2.0) -> None:
        """Switch the gun output now (manual mode, purge, safety off); not for switching along a path."""
        ...

    def clear_robot_error(self, timeout_s: float = 5.0) -> None:
        """Unlock a protective stop / robot error (the operator's command); raises GoalRejectedError if refused."""
        ...

    def wait_item(self, timeout_s: float) -> str:
        """The next work-item id read at the infeed (queued; RobotTimeoutError when none arrives)."""
        ...

    def index_conveyor(self, timeout_s: float = 10.0) -> ConveyorState:
        """Move the line one step; returns the new positions once the conveyor has stopped."""
        ...
