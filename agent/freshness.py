"""The freshness guard: right before acting, re-read the resource and its latest metrics.

A stop goes ahead only if the instance is still running (the actuator's preview: EC2 ``DryRun``, else the
state read) and its GPUs (and CPU, where published) stayed at or under the idle thresholds over the recent
window. No GPU sample in that window refuses: missing data is never idle. A VM that is powered off but
still allocated (Azure's "Stopped") needs no metrics: nothing can run on it.

Other kinds: the preview must say the call would succeed (a resize of a running EC2 instance does not), and
a group's sizes must still be what the plan saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.guards import Candidate
from providers.base import Actuator, Provider
from providers.model import Action, Metric, Resource, ResourceState, Window, utc
from recommenders.idle import IdleSettings

SIZE_KEYS = ("min_size", "max_size", "desired_capacity", "desired", "size", "capacity")


@dataclass
class FreshnessCheck:
    """A ``guards.Freshness`` callable over one apply's providers and actuators."""

    providers: Mapping[str, Provider]  # by cloud
    actuators: Mapping[str, Actuator]
    resources: Callable[[Candidate], Resource | None]  # the fresh inventory's record
    now: Callable[[], datetime]
    lookback: timedelta
    period: timedelta
    observed: Mapping[str, Mapping[str, Any]]  # resource key -> state the plan saw (groups' sizes)
    idle: IdleSettings = IdleSettings()
    seen: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # key -> the state each preview read

    def __call__(self, c: Candidate) -> tuple[bool, str]:
        actuator = self.actuators.get(str(c.ref.cloud))
        if actuator is None:
            return False, f"no {c.ref.cloud} actuator open"
        preview = actuator.preview(Action(c.kind, c.ref, dict(c.params)))
        self.seen[c.ref.key] = dict(preview.state)
        how = "the cloud's dry run" if preview.native else "the state read"
        if not preview.would_succeed:
            return False, f"{how} says no: {preview.detail or 'the call would fail'}"
        if c.kind == "scale":
            return self._same_sizes(c, dict(preview.state), how)
        if c.kind != "stop":
            return True, f"{how}: would succeed{'; ' + preview.detail if preview.detail else ''}"
        resource = self.resources(c)
        if resource is None:
            return False, "not in the fresh inventory (gone, or not listed)"
        if resource.state == ResourceState.STOPPED_ALLOCATED:
            return True, f"{how}: powered off but allocated (still billed), nothing can run on it"
        if resource.state != ResourceState.RUNNING:
            return False, f"now {resource.state}, not running"
        return self._still_idle(c, resource, how)

    def _same_sizes(self, c: Candidate, state: Mapping[str, Any], how: str) -> tuple[bool, str]:
        seen = self.observed.get(c.ref.key) or {}
        changed = [f"{k} {seen[k]} -> {state[k]}" for k in SIZE_KEYS if k in seen and k in state and seen[k] != state[k]]
        if changed:
            return False, "the group changed since the plan: " + ", ".join(changed)
        return True, f"{how}: sizes as planned ({', '.join(f'{k} {v}' for k, v in state.items() if k in SIZE_KEYS)})"

    def _still_idle(self, c: Candidate, resource: Resource, how: str) -> tuple[bool, str]:
        window, step = recent_window(self.now(), self.lookback, self.period)
        lookback = window.duration
        provider = self.providers[str(c.ref.cloud)]
        result = provider.usage(c.ref.region, [resource], window, step, host_metrics_for=lambda _: {c.ref.key})
        frame = result.usage.frame
        frame = frame[frame["resource"].astype(str) == c.ref.key]
        minutes = int(lookback.total_seconds() // 60)
        gpu = frame[frame["metric"] == Metric.GPU_UTIL.value]
        gpu = gpu[gpu["value"].notna()]
        if gpu.empty:
            return False, (f"no GPU utilization in the last {minutes} min: cannot confirm it is still idle "
                           "(missing data is never idle)")
        top = gpu.loc[gpu["value"].idxmax()]
        if float(top["value"]) > self.idle.gpu_util_max_pct:
            return False, (f"became busy: GPU {int(top['gpu'])} at {float(top['value']):.0f}% at "
                           f"{_hhmm(top['ts'])} (idle is <= {self.idle.gpu_util_max_pct:g}%)")
        cpu = frame[(frame["metric"] == Metric.CPU_UTIL.value) & frame["value"].notna()]
        cpu_note = ""
        if not cpu.empty:
            peak = float(cpu["value"].max())
            if peak > self.idle.cpu_util_max_pct:
                return False, f"became busy: CPU at {peak:.0f}% (idle is <= {self.idle.cpu_util_max_pct:g}%)"
            cpu_note = f", CPU max {peak:.1f}%"
        peak = float(top["value"])
        return True, (f"still running and idle: GPU max {0.0 if math.isnan(peak) else peak:.1f}%{cpu_note} over the "
                      f"last {minutes} min ({len(gpu)} samples); {how} allows the stop")


#: The re-read's own resolution: fine enough that a job started minutes ago shows, whatever the audit's period.
STEP = timedelta(minutes=5)


def recent_window(now: datetime, lookback: timedelta, period: timedelta) -> tuple[Window, timedelta]:
    """The window the re-read looks at, and its step.

    It ends at ``now`` rounded **up** to the step, so the current, unfinished bucket (a job started a
    minute ago) is read too; the step is at most 5 minutes whatever the audit's period was. It reaches
    back ``lookback``, and at least two of the audit's periods, so a series published hourly still has
    a sample in it.
    """
    step = min(period, STEP)
    seconds = int(step.total_seconds())
    end = datetime.fromtimestamp(-(-int(utc(now).timestamp()) // seconds) * seconds, tz=timezone.utc)
    span = max(lookback, 2 * period)
    return Window(end - step * -(-span // step), end), step


def _hhmm(ts: Any) -> str:
    try:
        return f"{ts:%Y-%m-%d %H:%M}Z"
    except (TypeError, ValueError):
        return str(ts)
