"""GPU model facts (throughput, memory bandwidth, rated power) from ``providers/data/gpu_models.csv``.

Used to compare GPUs across families when right-sizing (a workload moved to a slower GPU runs
proportionally busier) and to estimate energy where the agent publishes no power draw. Every row
names its datasheet; see providers/data/SOURCES.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: Board power at 100 % utilization as a fraction of the rated power (TDP): the corpus nvidia-smi
#: captures under gpu-burn show 632 W of 700 W on H100 and 627 W of 700 W on H200.
LOAD_POWER_FRACTION = 0.9
#: Idle draw as a fraction of TDP where the model's idle draw was not measured (H100: 70 W of 700 W;
#: H200: 78 W of 700 W; L40S: 110 W of 350 W in the corpus captures; 0.2 errs on the high side).
IDLE_POWER_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class GpuModel:
    model: str
    architecture: str
    memory_gib: float
    fp16_tensor_tflops: float
    memory_bandwidth_gbs: float
    tdp_w: float
    idle_w: float | None
    source: str

    def power_w(self, utilization: float) -> float:
        """Estimated board power at ``utilization`` (0..1): linear from idle draw to load draw."""
        idle = self.idle_w if self.idle_w is not None else IDLE_POWER_FRACTION * self.tdp_w
        load = LOAD_POWER_FRACTION * self.tdp_w
        return idle + (load - idle) * min(1.0, max(0.0, utilization))

    def slowdown_on(self, other: GpuModel) -> float:
        """How much busier a workload runs on ``other`` than on this GPU (>= the worse of compute and bandwidth)."""
        return max(self.fp16_tensor_tflops / other.fp16_tensor_tflops, self.memory_bandwidth_gbs / other.memory_bandwidth_gbs)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@cache
def _models() -> dict[str, GpuModel]:
    text = (resources.files("providers") / "data" / "gpu_models.csv").read_text(encoding="utf-8")
    table: dict[str, GpuModel] = {}
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            gpu = GpuModel(row["model"], row["architecture"], float(row["memory_gib"]), float(row["fp16_tensor_tflops"]),
                           float(row["memory_bandwidth_gbs"]), float(row["tdp_w"]),
                           float(row["idle_w"]) if row["idle_w"] else None, row["source"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"gpu_models.csv:{lineno}: bad row ({exc})") from exc
        for alias in [row["model"], *row["aliases"].split("|")]:
            if alias:
                table[_norm(alias)] = gpu
    return table


def gpu_model(name: str | None) -> GpuModel | None:
    """The model for a GPU name as clouds and agents spell it ("A10G", "NVIDIA A100-SXM4-40GB", "Tesla T4")."""
    if not name:
        return None
    table = _models()
    key = _norm(name)
    if key in table:
        return table[key]
    for prefix in ("nvidia", "tesla"):
        if key.startswith(prefix) and key[len(prefix):] in table:
            return table[key[len(prefix):]]
    return None


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two GPU names are the same chip (memory size aside); unknown names compare by spelling."""
    ma, mb = gpu_model(a), gpu_model(b)
    if ma is not None or mb is not None:
        return ma is mb
    return bool(a) and _norm(a or "") == _norm(b or "")
