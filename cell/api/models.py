"""Request bodies at the HTTP edge: strict pydantic models (unknown fields, NaN and oversize values refused).

Field names of job orders are those of OPC 10031-4 (ISA-95 Job Control), so an OPC UA gateway maps them one
to one. Responses are plain JSON objects documented in the routes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["JobOrderIn", "JobOrderUpdate", "MaterialRequirement", "JobOrderParameter", "JobMethod",
           "CellCommand", "ModeChange", "OverrideIn", "AlarmAction", "ID_PATTERN", "Reasoned"]  # fmt: skip

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
#: Pairs one job order may ask for.
MAX_PAIRS = 10_000
Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
Reason = Annotated[str, Field(min_length=3, max_length=500, description="why (kept in the audit log)")]


class Strict(BaseModel):
    """Base: unknown fields and NaN/inf are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class MaterialRequirement(Strict):
    """Pairs of one size and side (MaterialRequirements of the job order)."""

    MaterialDefinitionID: Annotated[str, Field(max_length=64)] = "pair"
    SizeEU: Annotated[float, Field(ge=15.0, le=55.0, multiple_of=0.5, description="EU (Paris point) size")]
    Side: Literal["left", "right"]
    Quantity: Annotated[int, Field(ge=1, le=10_000)]
    MaterialSublotIDs: Annotated[list[Id], Field(max_length=10_000)] | None = Field(
        default=None, description="the pairs' own ids as labelled upstream (read at the infeed); one per Quantity")

    @model_validator(mode="after")
    def _sublots(self) -> MaterialRequirement:
        if self.MaterialSublotIDs is not None and len(self.MaterialSublotIDs) != self.Quantity:
            raise ValueError("MaterialSublotIDs needs exactly Quantity ids")
        return self


class JobOrderParameter(Strict):
    """A named parameter of the job order (JobOrderParameters)."""

    Name: Annotated[str, Field(min_length=1, max_length=64)]
    Value: Annotated[str, Field(max_length=256)] | float | int | bool
    EngineeringUnits: Annotated[str, Field(max_length=16)] = ""


class _JobFields(Strict):
    Description: Annotated[str, Field(max_length=500)] = ""
    Priority: Annotated[int, Field(ge=0, le=1000, description="higher wins")] = 0
    StartTime: datetime | None = Field(default=None, description="earliest start (ISO 8601 with time zone)")
    EndTime: datetime | None = Field(default=None, description="due time (ISO 8601 with time zone)")
    JobOrderParameters: Annotated[list[JobOrderParameter], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _times(self) -> _JobFields:
        for t in (self.StartTime, self.EndTime):
            if t is not None and t.tzinfo is None:
                raise ValueError("StartTime/EndTime need a time zone (e.g. 2026-01-01T08:00:00Z)")
        if self.StartTime and self.EndTime and self.EndTime < self.StartTime:
            raise ValueError("EndTime is before StartTime")
        return self


class JobOrderIn(_JobFields):
    """A new job order (Store / StoreAndStart)."""

    JobOrderID: Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=48)]
    WorkMasterID: Id = Field(description="the style (work master), e.g. sneaker")
    MaterialRequirements: Annotated[list[MaterialRequirement], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _total(self) -> JobOrderIn:
        if sum(m.Quantity for m in self.MaterialRequirements) > MAX_PAIRS:
            raise ValueError(f"a job order asks for at most {MAX_PAIRS} pairs")
        ids = [i for m in self.MaterialRequirements for i in (m.MaterialSublotIDs or ())]
        if len(ids) != len(set(ids)):
            raise ValueError("MaterialSublotIDs repeat an id")
        return self


class JobOrderUpdate(Strict):
    """The Update method: fields to change (only before the job runs)."""

    Description: Annotated[str, Field(max_length=500)] | None = None
    Priority: Annotated[int, Field(ge=0, le=1000)] | None = None
    StartTime: datetime | None = None
    EndTime: datetime | None = None
    JobOrderParameters: Annotated[list[JobOrderParameter], Field(max_length=50)] | None = None
    MaterialRequirements: Annotated[list[MaterialRequirement], Field(min_length=1, max_length=50)] | None = None
    Reason: Reason


class Reasoned(Strict):
    """A command with who (the token) and why (the reason)."""

    Reason: Reason


class JobMethod(Reasoned):
    """A method called on a stored job order."""

    Method: Literal["Start", "RevokeStart", "Pause", "Resume", "Stop", "Abort", "Cancel", "Clear"]


class CellCommand(Reasoned):
    """A PackML command (CntrlCmd)."""

    Command: Literal["Reset", "Start", "Stop", "Hold", "Unhold", "Suspend", "Unsuspend", "Abort", "Clear", "Complete"]


class ModeChange(Reasoned):
    """A unit mode change."""

    Mode: Literal["Production", "Maintenance", "Manual"]


class OverrideIn(Reasoned):
    """An operator's override of the software's decision on a work item."""

    Action: Literal["force_pass", "force_fail", "respray", "skip"]


class AlarmAction(Reasoned):
    """ISA-18.2 alarm handling."""

    Action: Literal["acknowledge", "shelve", "unshelve"]
    ShelveMinutes: Annotated[float, Field(gt=0, le=480)] = 30.0
