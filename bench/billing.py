"""Billing ingestion throughput: millions of FOCUS rows through ``read_billing`` with bounded memory.

    .venv/bin/python bench/billing.py [--rows 10000000] [--files 10] [--format parquet|csv|both]
                                      [--memory-limit 1GB] [--threads N] [--dir DIR]

1. A child process generates ``--rows`` FOCUS 1.0 rows with DuckDB itself (``COPY ... FROM range(n)``)
   into ``--files`` files per format in a temporary folder (or ``--dir``, kept): hourly GPU-instance
   usage over 30 days for AWS, Microsoft and Google (types in the charge description, to be parsed),
   a fifth of it committed (a hundred commitments), some spot, some storage. Money is DECIMAL(20,10)
   in Parquet and text in CSV. The child also sums BilledCost on the files it wrote (DuckDB, DECIMAL).
2. For each format a fresh child process calls ``read_billing`` on the folder once and reports wall
   seconds, rows/s, its peak RSS (``resource.getrusage``: the whole child, Python and pandas included)
   and the DuckDB memory limit it ran under; it checks that the total BilledCost equals the
   generator's sum exactly and that every row was read.

Figures go to docs/benchmarks.md ("Billing ingestion") with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOURS = 720  # 30 days of hourly rows per resource

#: One FOCUS row per i in range(n): resource r = i % resources, hour h = i // resources.
ROWS_SQL = """
WITH base AS (
    SELECT i, i % {resources} AS r, i // {resources} AS h FROM range({start}, {stop}) t(i)
), shaped AS (
    SELECT i, r, h,
        CASE WHEN r % 10 < 6 THEN 'AWS' WHEN r % 10 < 9 THEN 'Microsoft' ELSE 'Google Cloud' END AS provider,
        r % 13 = 0 AS storage,
        CASE WHEN r % 5 = 0 THEN 'Committed' WHEN r % 11 = 0 THEN 'Dynamic' ELSE 'Standard' END AS pricing,
        CASE WHEN i % 9 = 0 THEN ((i * 7) % 100 + 1) / 100.0 ELSE 1.0 END AS qty
    FROM base
), typed AS (
    SELECT *,
        CASE provider
            WHEN 'AWS' THEN ['g5.xlarge', 'g5.12xlarge', 'p4d.24xlarge', 'p5.48xlarge', 'g6.xlarge', 'g4dn.xlarge'][r % 6 + 1]
            WHEN 'Microsoft' THEN ['Standard_NC24ads_A100_v4', 'Standard_NC4as_T4_v3', 'Standard_ND96asr_v4'][r % 3 + 1]
            ELSE ['a2-highgpu-1g', 'g2-standard-4', 'a3-highgpu-8g'][r % 3 + 1] END AS itype,
        CAST(0.5 + (r % 97) * 0.4137 AS DECIMAL(20, 10)) AS rate,
        ['us-east-1', 'us-west-2', 'eu-west-1', 'eastus', 'westeurope', 'us-central1'][r % 6 + 1] AS region
    FROM shaped
)
SELECT
    'ba-' || (r % 3) AS BillingAccountId,
    provider AS ProviderName,
    'acct-' || (r % 40) AS SubAccountId,
    CASE WHEN storage THEN 'Storage' WHEN provider = 'AWS' THEN 'Amazon Elastic Compute Cloud'
         WHEN provider = 'Microsoft' THEN 'Virtual Machines' ELSE 'Compute Engine' END AS ServiceName,
    'Usage' AS ChargeCategory,
    CASE WHEN storage THEN 'Standard' ELSE pricing END AS PricingCategory,
    TIMESTAMP '2025-03-01' + to_hours(CAST(h AS BIGINT)) AS ChargePeriodStart,
    TIMESTAMP '2025-03-01' + to_hours(CAST(h AS BIGINT) + 1) AS ChargePeriodEnd,
    CAST(CASE WHEN pricing = 'Committed' AND NOT storage THEN 0 ELSE rate * qty END AS DECIMAL(20, 10)) AS BilledCost,
    CAST(CASE WHEN pricing = 'Committed' AND NOT storage THEN rate * qty * 0.6 ELSE rate * qty END AS DECIMAL(20, 10))
        AS EffectiveCost,
    CAST(rate * qty AS DECIMAL(20, 10)) AS ListCost,
    CASE WHEN storage THEN 'disk-' ELSE 'vm-' END || printf('%012x', r) AS ResourceId,
    region AS RegionId,
    'SKU' || (r % 500) AS SkuId,
    CASE WHEN storage THEN 'Premium SSD storage, per GB-month'
         ELSE '$' || CAST(rate AS VARCHAR) || ' per On Demand Linux ' || itype || ' Instance Hour' END AS ChargeDescription,
    CASE WHEN storage THEN qty * 100 ELSE qty END AS ConsumedQuantity,
    CASE WHEN storage THEN 'GB-Months' ELSE 'Hours' END AS ConsumedUnit,
    CASE WHEN pricing = 'Committed' AND NOT storage THEN 'commitment-' || (r % 100) END AS CommitmentDiscountId,
    CASE WHEN pricing = 'Committed' AND NOT storage THEN 'Savings Plan' END AS CommitmentDiscountType,
    CASE WHEN pricing = 'Committed' AND NOT storage THEN 'Used' END AS CommitmentDiscountStatus,
    'USD' AS BillingCurrency
FROM typed
"""


def generate(folder: Path, rows: int, files: int, formats: list[str]) -> dict[str, object]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    resources = max(1, rows // HOURS)
    per_file = -(-rows // files)
    started = time.perf_counter()
    for fmt in formats:
        (folder / fmt).mkdir(parents=True, exist_ok=True)
        for n in range(files):
            start, stop = n * per_file, min(rows, (n + 1) * per_file)
            if start >= stop:
                break
            sql = ROWS_SQL.format(resources=resources, start=start, stop=stop)
            target = folder / fmt / (f"part-{n:05d}.parquet" if fmt == "parquet" else f"part-{n:05d}.csv")
            option = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
            con.execute(f"COPY ({sql}) TO '{target}' ({option})")
    total = con.execute(f"SELECT sum(BilledCost) FROM read_parquet('{folder}/{formats[0]}/*.parquet')").fetchone()[0] \
        if formats[0] == "parquet" else \
        con.execute(f"SELECT sum(CAST(BilledCost AS DECIMAL(38, 18))) FROM read_csv('{folder}/csv/*.csv', all_varchar = true)"
                    ).fetchone()[0]
    sizes = {fmt: sum(p.stat().st_size for p in (folder / fmt).iterdir()) for fmt in formats}
    return {"rows": rows, "resources": resources, "billed_total": str(total), "bytes": sizes,
            "seconds": round(time.perf_counter() - started, 1)}


def read(folder: Path, memory_limit: str, threads: int | None) -> dict[str, object]:
    from providers.focus import read_billing

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    data = read_billing([str(folder)], memory_limit=memory_limit, threads=threads)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": data.rows, "bad_rows": data.bad_rows, "files": len(data.sources),
            "billed_total": str(sum((t.billed_cost for t in data.totals), Decimal(0))),
            "resources": len(data.resources), "commitments": len(data.commitments), "hourly_rows": len(data.hourly),
            "wall_s": round(wall, 2), "rows_per_s": round(data.rows / wall), "peak_rss_mib": round(peak / 1024),
            "rss_before_read_mib": round(rss_before / 1024)}


def child(args: list[str]) -> dict[str, object]:
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        return {"error": f"exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}"}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--format", choices=("parquet", "csv", "both"), default="parquet")
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--dir", type=Path, default=None, help="generate here and keep the files")
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--read-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    formats = ["parquet", "csv"] if args.format == "both" else [args.format]
    if args.generate_only:
        print(json.dumps(generate(args.generate_only, args.rows, args.files, formats)))
        return
    if args.read_only:
        print(json.dumps(read(args.read_only, args.memory_limit, args.threads)))
        return

    import duckdb

    folder = args.dir or Path(tempfile.mkdtemp(prefix="costagent-bench-billing-"))
    try:
        made = child(["--generate-only", str(folder), "--rows", str(args.rows), "--files", str(args.files),
                      "--format", args.format])
        if "error" in made:
            sys.exit(f"generation failed: {made['error']}")
        print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"DuckDB {duckdb.__version__}; DuckDB memory limit {args.memory_limit}, "
              f"threads {args.threads or os.cpu_count()}")
        print(f"generated {made['rows']:,} FOCUS rows ({made['resources']:,} resources x {HOURS} hours) in "
              f"{args.files} files per format, {made['seconds']} s; sizes "
              + ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in made["bytes"].items()))
        print(f"{'format':8} {'rows':>12} {'wall s':>8} {'rows/s':>12} {'peak RSS MiB':>13} {'resources':>10} "
              f"{'hourly rows':>12}  check")
        for fmt in formats:
            got = child(["--read-only", str(folder / fmt), "--memory-limit", args.memory_limit]
                        + (["--threads", str(args.threads)] if args.threads else []))
            if "error" in got:
                print(f"{fmt:8} failed: {got['error']}")
                continue
            ok = (Decimal(str(got["billed_total"])) == Decimal(str(made["billed_total"]))
                  and got["rows"] == made["rows"] and got["bad_rows"] == 0)
            print(f"{fmt:8} {got['rows']:>12,} {got['wall_s']:>8} {got['rows_per_s']:>12,} {got['peak_rss_mib']:>13,} "
                  f"{got['resources']:>10,} {got['hourly_rows']:>12,}  "
                  f"{'total BilledCost exact' if ok else 'MISMATCH ' + str(got['billed_total'])}")
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
