"""Load test of the public answer page: gunicorn (2 workers) + wrk against 1,000 different tokens.

    python bench/rsvp.py [--duration 10] [--connections 20] [--postgres postgresql://postgres@127.0.0.1:5432/kipost_bench]

Prints requests/s and p99 latency for SQLite and (if --postgres is given) PostgreSQL, next to the
baseline /healthz on the same server and the target (≥ 300 requests/s, p99 < 100 ms).
The PostgreSQL database given is emptied (schema dropped). Needs `wrk` (Debian package) and gunicorn.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LUA = """
local tokens = {}
for line in io.lines(os.getenv("KI_POST_BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/antwort/" .. tokens[(counter * 7919) % #tokens + 1])
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(instance: Path, database_url: str, n: int) -> list[str]:
    """Schema + one published event + n invitations; returns the tokens."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import text

    from ki_post import create_app
    from ki_post.events import services
    from ki_post.events.models import Invitation
    from ki_post.extensions import db
    from ki_post.models import metadata

    app = create_app({"DATABASE_URL": database_url, "AUTO_MIGRATE": False, "EMBEDDED_WORKER": False,
                      "SECRET_KEY": "bench"}, instance_path=str(instance))
    with app.app_context():
        if database_url.startswith("postgresql"):
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        metadata.create_all(db.engine)
        start = datetime.now(timezone.utc) + timedelta(days=30)
        event = services.create_event(services.EventData(
            title="Feierstunde 5 Jahre Teilhabe- und Integrationsgesetz", start=start, end=start + timedelta(hours=2),
            place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf", companions_allowed=1,
            capacity=500, ask_dietary=True))
        services.publish_event(event)
        invitations = [Invitation(event=event, name=f"Person {k}", email=f"person{k}@kommune.example",
                                  organisation_name=f"Kommune {k % 53}", token=__import__("secrets").token_urlsafe(32))
                       for k in range(n)]
        db.session.add_all(invitations)
        db.session.commit()
        tokens = [i.token for i in invitations]
        db.engine.dispose()
    return tokens


def wrk(url: str, duration: int, connections: int, script: Path | None, env: dict) -> tuple[float, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        args += ["-s", str(script)]
    output = subprocess.run(args + [url], capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        print(f"  Achtung: {errors.group(1)} Antworten mit Fehlerstatus", file=sys.stderr)
    return rps, p99


def run(label: str, database_url: str, args) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        tokens = prepare(instance, database_url, args.tokens)
        token_file = instance / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        script = instance / "rsvp.lua"
        script.write_text(LUA)
        port = free_port()
        env = {**os.environ, "KI_POST_INSTANCE_PATH": str(instance), "KI_POST_DATABASE_URL": database_url,
               "KI_POST_AUTO_MIGRATE": "false", "KI_POST_EMBEDDED_WORKER": "false", "KI_POST_SECRET_KEY": "bench",
               "KI_POST_BENCH_TOKENS": str(token_file)}
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level",
                                   "warning", "app:app"], cwd=ROOT, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/antwort/{tokens[0]}", timeout=2).read()
                    break
                except Exception:
                    time.sleep(0.2)
            wrk(base + "/healthz", 2, args.connections, None, env)  # warm-up
            results = [(f"{label}: Antwortseite (1.000 Tokens)", *wrk(base + "/", args.duration, args.connections, script, env)),
                       (f"{label}: /healthz (Vergleich)", *wrk(base + "/healthz", args.duration, args.connections, None, env))]
        finally:
            server.terminate()
            server.wait(timeout=20)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("KI_POST_BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk fehlt (Debian: apt-get install wrk)")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += run("SQLite", f"sqlite:///{folder}/bench.sqlite3", args)
    if args.postgres:
        rows += run("PostgreSQL", args.postgres, args)
    print(f"gunicorn 2 Worker (sync), wrk 2 Threads, {args.connections} Verbindungen, {args.duration} s je Messung")
    print(f"{'Messung':<45} {'Anfragen/s':>12} {'p99 (ms)':>10}")
    for label, rps, p99 in rows:
        print(f"{label:<45} {rps:>12.0f} {p99:>10.1f}")
    print(f"{'Ziel':<45} {'≥ 300':>12} {'< 100':>10}")


if __name__ == "__main__":
    main()
