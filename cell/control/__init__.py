"""The orchestrator of the cell: PackML machine, PackTags, the flow of one pair, pipelining, overrides.

Faces for the task API and the console:

* :class:`Controller` — ``command(Command.START, who=..., why=...)``, ``set_mode(UnitMode.MANUAL, ...)``,
  ``status()`` (state, mode, PackTags, conveyor, item counts), ``state``, ``wait_for(...)``, ``start()``/``close()``.
* :class:`PackMLMachine`, :data:`TRANSITIONS`, :class:`State`, :class:`Command`, :class:`UnitMode` — the table.
* Human overrides go through the store (``store.overrides.request(action, who, why, item_id=..., args=...)``);
  the controller applies them within ``ControllerConfig.poll_s`` and records the result.
* :mod:`.pipeline` — the one module that calls the stages (real and replay modes).

Heavy libraries load only when a pair is prepared.
"""

from .controller import Controller, ControllerConfig, StopReason
from .packml import (
    ACTING_STATES,
    MODE_DISABLED,
    TRANSITIONS,
    Command,
    CommandRefusedError,
    Event,
    PackMLMachine,
    State,
    Transition,
    UnitMode,
    next_state,
)
from .packtags import PackTags
from .pipeline import PreparedPair, RealPipeline, ReplayPipeline, record_replay, standin_inspect

__all__ = ["Controller", "ControllerConfig", "StopReason", "ACTING_STATES", "MODE_DISABLED", "TRANSITIONS",
           "Command", "CommandRefusedError", "Event", "PackMLMachine", "State", "Transition", "UnitMode",
           "next_state", "PackTags", "PreparedPair", "RealPipeline", "ReplayPipeline", "record_replay",
           "standin_inspect"]  # fmt: skip
