"""Configuration of the robot link (``[robot]`` in ``cell.toml``): names follow the UR ROS 2 driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RobotLinkConfig"]


@dataclass(frozen=True)
class RobotLinkConfig:
    """Where the rosbridge server is, the ROS names, and the link's timing.

    Attributes:
        host, port: rosbridge websocket (the simulated cell: 127.0.0.1:9090).
        trajectory_action / trajectory_action_type: the UR driver's scaled joint trajectory controller.
        joint_states_topic, robot_status_topic: state and heartbeat.
        set_io_service: ``ur_msgs/srv/SetIO``; gun_pin: the gun's digital output.
        unlock_service: ``std_srvs/Trigger`` that unlocks a protective stop (UR dashboard client).
        gun_schedule_service / goal_status_service: the robot-side companion (see ``base`` docstring).
        infeed_topic: ``std_msgs/String`` work-item ids; conveyor_service: ``std_srvs/Trigger``, one step.
        conveyor_state_topic: ``std_msgs/String`` JSON ``{"at_scan", "at_spray", "seated"}``.
        camera_root_topic: latched ``std_msgs/String``, the simulated cameras' folder.
        joint_names: the robot's joint order.
        connect_timeout_s: give up connecting after this long (retries with backoff meanwhile).
        reconnect_initial_s / reconnect_max_s: exponential backoff of the transport's reconnects.
        heartbeat_timeout_s: joint_states silent this long -> the link counts as lost (noticed < 1 s).
        approach_speed_fraction: of the joint speed limits, for the move to a program's first point.
        max_speed_rad_s: joint speed limits used to time that approach (UR10e datasheet).
    """

    host: str = "127.0.0.1"
    port: int = 9090
    trajectory_action: str = "/scaled_joint_trajectory_controller/follow_joint_trajectory"
    trajectory_action_type: str = "control_msgs/action/FollowJointTrajectory"
    joint_states_topic: str = "/joint_states"
    robot_status_topic: str = "/robot_status"
    set_io_service: str = "/io_and_status_controller/set_io"
    gun_pin: int = 0
    unlock_service: str = "/dashboard_client/unlock_protective_stop"
    gun_schedule_service: str = "/gluecell/gun_schedule/arm"
    goal_status_service: str = "/gluecell/goal_status"
    infeed_topic: str = "/gluecell/infeed/barcode"
    conveyor_service: str = "/gluecell/conveyor/index"
    conveyor_state_topic: str = "/gluecell/conveyor/state"
    camera_root_topic: str = "/gluecell_sim/camera_root"
    joint_names: tuple[str, ...] = (
        "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
    )  # fmt: skip
    connect_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 5.0
    heartbeat_timeout_s: float = 0.5
    approach_speed_fraction: float = 0.3
    max_speed_rad_s: tuple[float, ...] = (2.0944, 2.0944, 3.1416, 3.1416, 3.1416, 3.1416)

    def __post_init__(self) -> None:
        from gluecell.core.errors import ConfigError

        if not 0 < self.port < 65536:
            raise ConfigError(f"robot.port: must be 1-65535, got {self.port}", key="robot.port")
        if not 0 < self.heartbeat_timeout_s <= 0.9:
            raise ConfigError("robot.heartbeat_timeout_s: must be in (0, 0.9] so a lost link is noticed within 1 s",
                              key="robot.heartbeat_timeout_s")  # fmt: skip
        if not 0 < self.approach_speed_fraction <= 1:
            raise ConfigError("robot.approach_speed_fraction: must be in (0, 1]", key="robot.approach_speed_fraction")
        if len(self.max_speed_rad_s) != len(self.joint_names):
            raise ConfigError("robot.max_speed_rad_s: one entry per joint", key="robot.max_speed_rad_s")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> RobotLinkConfig:
        """Strict load of a ``[robot]`` table (unknown keys are an error naming the allowed ones)."""
        from gluecell.core.config import from_dict

        return from_dict(cls, data, path="robot")
