"""`make bench`: seed a synthetic cohort in a separate database, run every benchmark, print JSON.

Each module ``bench/bench_*.py`` exposes ``run(ctx) -> dict``; its result lands in
the report under the module's name. ``ctx`` carries the scale and helpers. The
benchmark database is ``<DATABASE_URL name>_bench``; it is dropped and rebuilt on
every run, never the development or test database.

    python -m bench [--participants 20000] [--only NAME] [--sizes 500,2000]
                    [--out bench-results/latest.json]

A module with ``RUN_ALONE_ONLY = True`` runs only when named with ``--only`` (bench_crf:
its seed and pages are part of bench_pages in the full run). ``--sizes`` replaces the
cohort sizes of the page benchmarks (development runs; 2,000 is always among them). A
result's ``crf_seed`` section is also copied to the top of the report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench_database_url() -> str:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "postgres://127.0.0.1:5432/blend")
    cfg = dj_database_url.parse(url)
    return url.rsplit("/", 1)[0] + "/" + cfg["NAME"] + "_bench" if "?" not in url else url


def _recreate_database(url: str) -> None:
    import dj_database_url

    from bench import admin_connection

    cfg = dj_database_url.parse(url)
    conn = admin_connection(cfg)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


def summarise(samples_ms: list[float]) -> dict:
    """Median, p95 and max of a list of milliseconds."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
    }


class Context:
    def __init__(self, participants: int, sizes: tuple[int, ...] | None = None):
        self.participants = participants
        self.sizes = sizes
        self.summarise = summarise


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=20000)
    parser.add_argument("--only", default=None, help="run only bench_<ONLY>.py")
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated cohort sizes of the page benchmarks (default 2000,20000)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "latest.json"))
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None

    url = _bench_database_url()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blend.settings")
    _recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    report: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "participants": args.participants,
        "results": {},
    }
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    for name in names:
        if args.only and name != f"bench_{args.only}":
            continue
        module = importlib.import_module(f"bench.{name}")
        if getattr(module, "RUN_ALONE_ONLY", False) and not args.only:
            continue
        started = time.monotonic()
        try:
            result = module.run(Context(args.participants, sizes))
        except Exception as exc:  # noqa: BLE001 - a failing benchmark is reported, others still run
            result = {"error": f"{exc.__class__.__name__}: {exc}"}
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        report["results"][name.removeprefix("bench_")] = result
        if "crf_seed" in result:
            report["crf_seed"] = result["crf_seed"]
        print(f"[bench] {name}: {json.dumps(result)}", file=sys.stderr, flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 1 if any("error" in r for r in report["results"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
