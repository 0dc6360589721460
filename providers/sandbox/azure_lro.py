"""Compute's long-running operations, as the Resource Manager emulator (``azure_arm``) answers them.

Written from the public REST reference (Compute 2024-11-01 .. 2026-04-01, "Track asynchronous Azure
operations"): a ``POST`` action answers 202 with absolute ``Azure-AsyncOperation`` and ``Location``
URLs; a ``PATCH``/``PUT`` answers 200/201 with the resource (``provisioningState`` Updating/Creating) and
``Azure-AsyncOperation`` only. Both point at
``/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{id}``:

- the ``Azure-AsyncOperation`` URL answers 200 ``{"startTime", "status": "InProgress"|"Succeeded",
  "name"}`` (``endTime`` once done);
- the ``Location`` URL (``monitor=true``) answers 202 with ``Location`` until done, then 200 with no body.

The operation reads ``InProgress`` for ``lro_polls`` polls, then ``Succeeded``; the change lands at
completion (``apply``), when the resource's ``provisioningState`` returns to Succeeded. A second operation
on a resource whose first is still running is refused with 409 OperationNotAllowed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from providers.sandbox.azure_arm_shapes import COMPUTE, ArmError, ScaleSet, Vm, iso
from providers.sandbox.json_server import Request, Response


@dataclass
class Operation:
    id: str
    location: str
    subscription: str
    target: Vm | ScaleSet
    apply: Callable[[], None]
    started: datetime
    polls: int = 0
    ended: datetime | None = None


class LongRunningOperations:
    """The operation part of ``AzureArmEmulator`` (a mixin): starts, polls and completes operations.

    The emulator sets ``lro_polls``, ``_ops`` (operation id -> ``Operation``) and ``_ids`` (a counter)."""

    lro_polls: int
    _ops: dict[str, Operation]
    _ids: Iterator[int]

    def pending_operations(self) -> int:
        return sum(op.ended is None for op in self._ops.values())

    def complete_operations(self) -> None:
        """Finish every operation nobody polled to its end (a client that gave up, ``polling=False``)."""
        for op in list(self._ops.values()):
            if op.ended is None:
                self._finish(op)

    def _start(self, request: Request, target: Vm | ScaleSet, apply: Callable[[], None]) -> dict[str, str]:
        """Start an operation on ``target`` that runs ``apply`` at completion; its ``Azure-AsyncOperation``
        and ``Location`` headers (409 while another operation on ``target`` runs)."""
        if target.busy is not None:
            raise ArmError(409, "OperationNotAllowed", f"Operation '{target.busy}' is still in progress on "
                                                       f"'{target.name}'; try again when it completes.")
        op = Operation(str(uuid.UUID(int=next(self._ids))), target.location, target.subscription, target, apply,
                       datetime.now(timezone.utc))
        self._ops[op.id] = op
        target.busy = op.id
        base = (f"{request.base_url}/subscriptions/{op.subscription}/providers/{COMPUTE}/locations/{op.location}"
                f"/operations/{op.id}")
        return {"Azure-AsyncOperation": f"{base}?api-version={request.arg('api-version')}",
                "Location": f"{base}?monitor=true&api-version={request.arg('api-version')}"}

    def _finish(self, op: Operation) -> None:
        op.apply()
        op.target.busy = None
        op.target.provisioning = "Succeeded"
        op.ended = datetime.now(timezone.utc)

    def _poll(self, request: Request, op_id: str) -> Response:
        op = self._ops.get(op_id)
        if op is None:
            raise ArmError(404, "ResourceNotFound", f"Operation {op_id} not found.")
        if op.ended is None:
            op.polls += 1
            if op.polls > self.lro_polls:
                self._finish(op)
        if (request.arg("monitor") or "").lower() == "true":  # the Location URL: 202 until done, then 200
            if op.ended:
                return Response(200, None)
            query = urlencode({k: v[0] for k, v in request.query.items()})
            return Response(202, {}, {"Location": f"{request.base_url}{request.path}?{query}"})
        body: dict[str, Any] = {"startTime": iso(op.started), "status": "Succeeded" if op.ended else "InProgress",
                                "name": op.id}
        if op.ended:
            body["endTime"] = iso(op.ended)
        return Response(200, body)
