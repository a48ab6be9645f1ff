#!/usr/bin/env python3
"""Side-by-side comparison of the privseg command-line tool with DuckDB.

Both sides load the same files written by the project's generator
(examples/gen_data.rs), evaluate the same segments at the same instant and
must find the same member counts. DuckDB gets hand-written SQL that applies
the consent rules of the sample policy (see README.md beside this file for
what the SQL does not model).

    python3 benches/duckdb/compare.py --subjects 1000000

Steps: a virtual environment with the `duckdb` package (under target/,
reused when present), the release `privseg` binary and `gen_data` example,
the data (under target/duckdb-bench/N/, reused when present; --clean
removes it at the end), then each side in its own child process under
/usr/bin/time -v, so that peak RSS and CPU time are measured per side.
Exit status: 0 when every count agrees, 1 on any disagreement.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Rules --omit can leave out of the SQL, to see that the data exercises
# each one (the counts must then disagree).
RULES = ("restriction", "objection", "optout", "ccpa_minor", "age", "notice", "expiry", "consent")
OMIT: set = set()
E_AT = 'e."at"'  # "at" is a keyword in DuckDB
ROOT = Path(__file__).resolve().parents[2]
AT = "2026-11-23T12:00:00Z"  # the generator's reference time

# (name, purpose, privseg segment text, SQL predicate over table s).
# The SQL mirrors the segment language: a term over a missing value is
# false (hence the COALESCEs, which also make NOT behave as in privseg), and
# a value of an attribute with a staleness limit (last_order: 400 days)
# verified before the limit counts as missing. {at} is the reference time
# relative times (`now - 90d`) are read against (--at); {now} the instant
# eligibility and staleness are judged at: privseg's Engine::evaluate takes
# them as of the host clock, never as of the reference time.
FRESH_LAST_ORDER = "s.verified_at >= TIMESTAMP '{now}' - INTERVAL 400 DAY"
SEGMENTS = [
    (
        "lapsed_vip",
        "marketing.email",
        'country in ("FR", "DE") and total_spend >= 500 and last_order < now - 90d',
        "coalesce(s.country IN ('FR', 'DE'), false)"
        " AND coalesce(s.total_spend >= 500, false)"
        " AND coalesce(s.last_order < TIMESTAMP '{at}' - INTERVAL 90 DAY AND "
        + FRESH_LAST_ORDER
        + ", false)",
    ),
    (
        "newsletter_mid",
        "marketing.email",
        "newsletter = true and total_spend between 100 and 5000",
        "coalesce(s.newsletter = true, false)"
        " AND coalesce(s.total_spend BETWEEN 100 AND 5000, false)",
    ),
    (
        "ads_recent",
        "marketing.advertising.third_party",
        'last_order >= now - 60d and country != "IT"',
        "coalesce(s.last_order >= TIMESTAMP '{at}' - INTERVAL 60 DAY AND "
        + FRESH_LAST_ORDER
        + ", false) AND coalesce(s.country <> 'IT', false)",
    ),
    (
        "analytics_not_us",
        "analytics.product",
        'not (country = "US") or total_spend > 10000',
        "NOT coalesce(s.country = 'US', false) OR coalesce(s.total_spend > 10000, false)",
    ),
]


def sh(cmd, **kw):
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- setup


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import duckdb"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    sh([sys.executable, "-m", "venv", str(venv)])
    sh([str(py), "-m", "pip", "install", "--quiet", "duckdb"])
    return py


def build(skip: bool):
    if not skip:
        sh(
            ["cargo", "build", "--release", "--features", "cli", "--bin", "privseg",
             "--example", "gen_data"],
            cwd=ROOT,
        )
    return ROOT / "target/release/privseg", ROOT / "target/release/examples/gen_data"


def generate(gen: Path, n: int, out: Path) -> Path:
    stamp = out / "generated"
    if not (stamp.exists() and stamp.read_text() == str(n)):
        out.mkdir(parents=True, exist_ok=True)
        sh([str(gen), "--subjects", str(n), "--out", str(out)])
        stamp.write_text(str(n))
    # The generated policy has no actors: give the user running this one
    # identity with the admin role (docs/cli.md). The tool refuses a policy
    # file that its group or others can write.
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    spec = json.loads((out / "policy.json").read_text())
    spec["actors"] = [{"os_user": user, "id": "bench", "roles": ["admin"]}]
    mapped = out / "policy.local.json"
    mapped.write_text(json.dumps(spec, indent=2) + "\n")
    os.chmod(mapped, 0o644)
    return mapped


def timed(cmd, **kw):
    """Runs cmd under /usr/bin/time -v; returns (proc, wall s, max RSS MiB, cpu s)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + [str(c) for c in cmd],
                       capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", p.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", p.stderr)
    if p.returncode != 0:
        # What the command said, without the /usr/bin/time -v block.
        sys.stderr.write(p.stderr.split("\tCommand being timed")[0][-4000:])
        raise SystemExit(f"command failed with status {p.returncode}: {cmd[0]}")
    return (p, wall, int(rss.group(1)) / 1024 if rss else float("nan"),
            float(user.group(1)) + float(system.group(1)) if user and system else float("nan"))


# ---------------------------------------------------------------- privseg side


def run_privseg(binary: Path, policy: Path, data: Path, repeat: int):
    cmd = [binary, "eval", "--actor", "bench", "--role", "admin",
           "--policy", policy, "--subjects", data / "subjects.csv",
           "--consents", data / "consents.jsonl", "--at", AT, "--stats", "--format", "json"]
    for name, purpose, text, _ in SEGMENTS:
        for _ in range(1 + repeat):
            cmd += ["--segment", f'segment "{name}" for {purpose} where {text}']
    p, wall, rss, cpu = timed(cmd)
    load = float(re.search(r"stats: load total ([\d.]+) s", p.stderr).group(1))
    times = {}
    for m in re.finditer(r'stats: segment "([^"]+)": (\d+) members in ([\d.]+) ms', p.stderr):
        times.setdefault(m.group(1), []).append(float(m.group(3)))
    counts = {}
    for line in p.stdout.splitlines():
        j = json.loads(line)
        counts.setdefault(j["segment"], set()).add(j["members"])
    return {"load_s": load, "eval_ms": times, "counts": counts, "wall_s": wall,
            "rss_mib": rss, "cpu_s": cpu}


# ---------------------------------------------------------------- DuckDB side


def age_on(birth, on):
    """privseg's age_on: full years, a birthday counting from its own day."""
    return (f"(year({on}) - year({birth}) - CASE WHEN month({on}) * 100 + day({on}) < "
            f"month({birth}) * 100 + day({birth}) THEN 1 ELSE 0 END)")


def below_at(birth, gate, t):
    """privseg's below_at: younger than gate at t; an unknown birth date may be."""
    return f"({birth} IS NULL OR {age_on(birth, f'CAST({t} AS DATE)')} < {gate})"


def sql_list(xs):
    return ", ".join("'" + x.replace("'", "''") + "'" for x in xs)


def is_marketing(key_sql):
    return f"({key_sql} = 'marketing' OR {key_sql} LIKE 'marketing.%')"


def eligibility_sql(policy: dict, purpose_key: str, at: str) -> tuple[str, str]:
    """Returns (aggregate query over events per subject, eligibility condition
    over s (subject facts) and a (the aggregate)) for one purpose, as
    src/consent/rules.rs decides it for a segment that reads no special or
    CCPA-sensitive data and is not exported."""
    spec = next(p for p in policy["purposes"] if p["key"] == purpose_key)
    consent_basis = spec["basis"] == "consent"
    email = bool(spec.get("email_channel"))
    sale_share = bool(spec.get("ccpa_sale_share"))
    soft = bool(spec.get("email_soft_opt_in"))
    accepted = spec.get("accepted_notice_versions") or []
    validity = spec.get("consent_validity_days")
    marketing = purpose_key == "marketing" or purpose_key.startswith("marketing.")
    P = "'" + purpose_key + "'"
    NOW = f"TIMESTAMP '{at}'"
    # Per subject: needs consent (the CCPA opt-out model replaces consent for
    # a sale/share purpose in California), gated by age (GDPR).
    needs = "false" if not consent_basis else ("s.regime <> 'ccpa'" if sale_share else "true")
    gated = f"(s.regime = 'gdpr' AND {needs})"
    parent_gate = "CASE s.regime WHEN 'gdpr' THEN s.gdpr_age WHEN 'ccpa' THEN 13 END"

    def counts(e="e"):
        e_at = e + '."at"'
        if "age" in OMIT:
            return "true"
        return (f"CASE {e}.kind WHEN 'consent_granted' THEN NOT {gated} OR NOT "
                f"{below_at('s.birth_date', 's.consent_age', e_at)} "
                f"WHEN 'parental_consent' THEN ({parent_gate}) IS NOT NULL AND "
                f"{below_at('s.birth_date', parent_gate, e_at)} ELSE true END")

    deciding = (f"(e.kind IN ('consent_granted', 'consent_refused', 'consent_withdrawn', "
                f"'parental_consent', 'soft_opt_in') AND e.purpose = {P})")
    if email:
        deciding = (f"({deciding} OR (e.kind = 'unsubscribe' AND "
                    f"(e.purpose IS NULL OR e.purpose = {P})))")
    objection_covers = (
        f"(e.purpose IS NULL AND {str(marketing).lower()}) OR "
        f"(e.purpose IS NOT NULL AND (({str(marketing).lower()} AND {is_marketing('e.purpose')}) "
        f"OR {P} = e.purpose OR {P} LIKE e.purpose || '.%'))"
    )
    rec = "{'kind': e.kind, 'notice': e.notice_version, 'at': e.\"at\", 'expires_at': e.expires_at}"
    aggs = [
        "arg_max(e.kind, e.k) FILTER (e.kind IN ('restriction', 'restriction_lifted')) AS restr",
        f"bool_or(e.kind = 'objection' AND ({objection_covers})) AS objected",
        f"arg_max({rec}, e.k) FILTER ({deciding} AND {counts()}) AS dec",
    ]
    if sale_share:
        aggs.append(
            "arg_max(e.kind, e.k) FILTER (e.kind IN ('opt_out_sale_share', 'gpc') OR "
            "(e.kind = 'opt_in_sale_share' AND (s.regime <> 'ccpa' OR NOT "
            f"{below_at('s.birth_date', 13, E_AT)}))) AS opt")
        aggs.append(
            f"arg_max({rec}, e.k) FILTER (e.kind IN ('opt_out_sale_share', 'gpc') OR "
            f"(e.kind = 'opt_in_sale_share' AND NOT {below_at('s.birth_date', 13, E_AT)}) OR "
            f"(e.kind = 'parental_consent' AND e.purpose = {P} AND "
            f"{below_at('s.birth_date', 13, E_AT)}) OR "
            f"(e.kind IN ('consent_refused', 'consent_withdrawn') AND e.purpose = {P})) AS cm")
    agg = (f"SELECT e.subject, {', '.join(aggs)} FROM events e JOIN facts s ON s.id = e.subject "
           f"WHERE {E_AT} <= {NOW} GROUP BY e.subject")

    def valid(r):
        # grant_validity: an accepted notice version, not expired.
        notice = "true" if not accepted or "notice" in OMIT else f"coalesce({r}.notice IN ({sql_list(accepted)}), false)"
        expiry = f"coalesce({r}.expires_at, TIMESTAMP 'infinity')"
        r_at = r + '."at"'
        if "expiry" in OMIT:
            expiry = "TIMESTAMP 'infinity'"
        elif validity is not None:
            expiry = f"least({expiry}, {r_at} + INTERVAL {int(validity)} DAY)"
        return f"({notice} AND {NOW} < {expiry})"

    cond = ["true"]
    if not spec.get("restriction_exempt") and "restriction" not in OMIT:
        cond.append("NOT coalesce(a.restr = 'restriction', false)")
    if "objection" not in OMIT:
        cond.append("NOT coalesce(a.objected, false)")
    if sale_share and "optout" not in OMIT:
        cond.append("coalesce(a.opt NOT IN ('opt_out_sale_share', 'gpc'), true)")
    if sale_share and "ccpa_minor" not in OMIT:
        cond.append(
            "(s.regime <> 'ccpa' OR coalesce(s.age >= 16, false) OR "
            f"coalesce(a.cm.kind IN ('opt_in_sale_share', 'parental_consent') AND {valid('a.cm')}, false))")
    if (consent_basis or email) and "consent" not in OMIT:
        grant_ok = f"(a.dec.kind IN ('consent_granted', 'parental_consent') AND {valid('a.dec')})"
        if soft:
            grant_ok = f"({grant_ok} OR a.dec.kind = 'soft_opt_in')"
        applies = needs if not email else "true"
        cond.append(f"(NOT ({applies}) OR coalesce({grant_ok}, false))")
    return agg, " AND ".join(f"({c})" for c in cond)


def duckdb_worker(args):
    import duckdb

    OMIT.update(args.omit or [])
    policy = json.loads(Path(args.policy).read_text())
    data = Path(args.data)
    at = AT.replace("T", " ").rstrip("Z")
    now = args.eligibility_at.replace("T", " ").rstrip("Z")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    out = {"duckdb_version": duckdb.__version__,
           "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}

    t = time.perf_counter()
    con.execute(f"""
        CREATE TABLE subjects AS SELECT
            id, jurisdiction, birth_date, verified_at::TIMESTAMP AS verified_at, country,
            total_spend, last_order::TIMESTAMP AS last_order, newsletter
        FROM read_csv('{data / "subjects.csv"}', header = true, columns = {{
            'id': 'VARCHAR', 'jurisdiction': 'VARCHAR', 'birth_date': 'DATE',
            'verified_at': 'TIMESTAMPTZ', 'country': 'VARCHAR', 'total_spend': 'BIGINT',
            'last_order': 'TIMESTAMPTZ', 'newsletter': 'BOOLEAN'}})""")
    # File order breaks ties between events of a subject at the same time
    # (as privseg's arrival order does): rowid follows insertion order, which
    # DuckDB preserves for a single file.
    con.execute(f"""
        CREATE TABLE events AS SELECT
            subject, kind, purpose, "at"::TIMESTAMP AS "at", notice_version,
            expires_at::TIMESTAMP AS expires_at
        FROM read_json('{data / "consents.jsonl"}', format = 'newline_delimited', columns = {{
            'subject': 'VARCHAR', 'kind': 'VARCHAR', 'purpose': 'VARCHAR', 'at': 'TIMESTAMPTZ',
            'notice_version': 'VARCHAR', 'notice_sha256': 'VARCHAR', 'channel': 'VARCHAR',
            'collector': 'VARCHAR', 'expires_at': 'TIMESTAMPTZ', 'explicit': 'BOOLEAN',
            'evidence_sha256': 'VARCHAR'}})""")
    con.execute("ALTER TABLE events ADD COLUMN k BIGINT")
    con.execute('UPDATE events SET k = epoch("at")::BIGINT * 1073741824 + rowid')
    out["load_s"] = time.perf_counter() - t
    out["rows"] = con.execute("SELECT (SELECT count(*) FROM subjects), (SELECT count(*) FROM events)").fetchone()

    jur = ", ".join(
        f"('{j['code']}', '{j['regime']}', {j.get('digital_consent_age') or 'NULL'})"
        for j in policy["jurisdictions"])
    # Subject facts as of the evaluation instant: regime, ages.
    facts = f"""(SELECT s.*, j.regime, j.age AS gdpr_age,
                   coalesce(j.age, 16) AS consent_age,
                   {age_on('s.birth_date', f"DATE '{now[:10]}'")} AS age
            FROM subjects s JOIN (VALUES {jur}) j(code, regime, age) ON j.code = s.jurisdiction)"""

    out["eval_ms"], out["counts"], out["materialized_ms"] = {}, {}, {}
    cache = {}
    for name, purpose, _, pred in SEGMENTS:
        agg, cond = eligibility_sql(policy, purpose, now)
        query = f"""WITH facts AS {facts}, agg AS ({agg})
            SELECT count(*) FROM facts s LEFT JOIN agg a ON a.subject = s.id
            WHERE ({cond}) AND ({pred.format(at=at, now=now)})"""
        times, counts = [], set()
        for _ in range(1 + args.repeat):
            t = time.perf_counter()
            counts.add(con.execute(query).fetchone()[0])
            times.append((time.perf_counter() - t) * 1e3)
        out["eval_ms"][name], out["counts"][name] = times, sorted(counts)
        # The same with each purpose's eligibility materialized once as a
        # table of ids (the analogue of privseg's cached eligibility masks).
        if purpose not in cache:
            table = "elig_" + re.sub(r"\W", "_", purpose)
            t = time.perf_counter()
            con.execute(f"""CREATE TABLE {table} AS WITH facts AS {facts}, agg AS ({agg})
                SELECT s.id FROM facts s LEFT JOIN agg a ON a.subject = s.id WHERE {cond}""")
            cache[purpose] = (table, (time.perf_counter() - t) * 1e3)
        table, build_ms = cache[purpose]
        mq = (f"SELECT count(*) FROM subjects s SEMI JOIN {table} x ON x.id = s.id "
              f"WHERE {pred.format(at=at, now=now)}")
        times, counts2 = [], set()
        for _ in range(1 + args.repeat):
            t = time.perf_counter()
            counts2.add(con.execute(mq).fetchone()[0])
            times.append((time.perf_counter() - t) * 1e3)
        out["materialized_ms"][name] = {"build_ms": build_ms, "times": times,
                                        "counts": sorted(counts2)}
    print(json.dumps(out))


def run_duckdb(py: Path, policy: Path, data: Path, repeat: int, threads, omit, now):
    cmd = [py, Path(__file__).resolve(), "--worker", "--policy", policy, "--data", data,
           "--repeat", str(repeat), "--eligibility-at", now]
    for rule in omit or []:
        cmd += ["--omit", rule]
    if threads:
        cmd += ["--threads", str(threads)]
    p, wall, rss, cpu = timed(cmd)
    r = json.loads(p.stdout)
    r.update(wall_s=wall, rss_mib=rss, cpu_s=cpu)
    return r


# ---------------------------------------------------------------- report


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(d, p):
    return f"{d / p:.1f}x" if p > 0 else "-"


def report(n, ps, dd):
    ok = True
    rows = [("load (s)", ps["load_s"], dd["load_s"])]
    lines = []
    for name, _, _, _ in SEGMENTS:
        pc = ps["counts"].get(name, set())
        dc = set(dd["counts"][name])
        mc = set(dd["materialized_ms"][name]["counts"])
        agree = len(pc) == 1 and pc == dc == mc
        ok &= agree
        lines.append(f"  {name:18} privseg {sorted(pc)}  duckdb {sorted(dc)}  "
                     f"duckdb(materialized) {sorted(mc)}  {'agree' if agree else '*** DISAGREE ***'}")
        pt, dt = ps["eval_ms"][name], dd["eval_ms"][name]
        m = dd["materialized_ms"][name]
        rows.append((f"{name}: first eval (ms)", pt[0], dt[0]))
        rows.append((f"{name}: later evals, median (ms)", med(pt[1:]), med(dt[1:])))
        rows.append((f"{name}: later, DuckDB eligibility materialized (ms)", med(pt[1:]),
                     med(m["times"][1:])))
    print(f"\n{n:,} subjects, {dd['rows'][1]:,} events, at {AT}; DuckDB {dd['duckdb_version']} "
          f"({dd['threads']} threads)\n")
    print("member counts:")
    print("\n".join(lines))
    print()
    w = max(len(r[0]) for r in rows) + 2
    print(f"{'':{w}}{'privseg':>12}{'DuckDB':>12}{'DuckDB/privseg':>16}")
    for label, p, d in rows:
        print(f"{label:{w}}{p:12.3f}{d:12.3f}{ratio(d, p):>16}")
    for label, key in (("process wall (s)", "wall_s"), ("process CPU (s)", "cpu_s"),
                       ("peak RSS (MiB)", "rss_mib")):
        print(f"{label:{w}}{ps[key]:12.1f}{dd[key]:12.1f}{ratio(dd[key], ps[key]):>16}")
    built = {}
    for name, purpose, _, _ in SEGMENTS:
        built.setdefault(purpose, round(dd["materialized_ms"][name]["build_ms"]))
    print(f"\nDuckDB eligibility tables, built once per purpose (ms): {built}")
    if not ok:
        print("\n*** MEMBER COUNTS DISAGREE: see above ***", file=sys.stderr)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5, help="later evaluations per segment")
    ap.add_argument("--data-dir", type=Path, help="default target/duckdb-bench/N")
    ap.add_argument("--venv", type=Path, default=ROOT / "target/duckdb-venv")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: its own)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--clean", action="store_true", help="delete the data when done")
    ap.add_argument("--omit", action="append", choices=RULES,
                    help="leave a rule out of the DuckDB SQL (a check that the counts then "
                         "disagree); repeatable")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policy", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--eligibility-at", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return duckdb_worker(args)

    py = ensure_venv(args.venv)
    binary, gen = build(args.skip_build)
    data = args.data_dir or ROOT / f"target/duckdb-bench/{args.subjects}"
    policy = generate(gen, args.subjects, data)
    try:
        # privseg judges eligibility and staleness as of the host clock when
        # it evaluates; DuckDB is given the instant privseg started at. All
        # generated times fall at 00:00 or 12:00 UTC, so the two agree unless
        # privseg's run crosses one of those.
        start = datetime.now(timezone.utc).replace(microsecond=0)
        ps = run_privseg(binary, policy, data, args.repeat)
        end = datetime.now(timezone.utc)
        crossed = start.date() != end.date() or (start.hour < 12) != (end.hour < 12)
        now = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        dd = run_duckdb(py, policy, data, args.repeat, args.threads, args.omit, now)
        print(f"\neligibility and staleness judged as of {now} (the host clock), relative "
              f"times read against {AT}")
        if crossed:
            print("warning: privseg's run crossed 00:00 or 12:00 UTC, when generated "
                  "consents expire and birthdays turn: counts may differ for that reason",
                  file=sys.stderr)
        ok = report(args.subjects, ps, dd)
    finally:
        if args.clean:
            shutil.rmtree(data)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
