"""Spark local mode against one engine: time per query, ratio to Spark's own
count() over the same rows, bytes per subject, and a linear extrapolation to
1B subjects.

    SPARK_LOCAL_IP=127.0.0.1 target/py-venv/bin/python benches/spark/bench.py 200000

Run from the repository root with privseg installed (pip install ./python).
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python", "tests"))
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("/python")]

import privseg  # noqa: E402
import privseg.spark as ps  # noqa: E402
from conftest import KEY, NOW, policy_json, population  # noqa: E402

SEG = 'segment "de" for marketing.email where country = "DE" or total_spend > 400'


def timed(f, repeat=3):
    best = None
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return best, out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    partitions = int(os.environ.get("PARTITIONS", "2"))
    shards = int(os.environ.get("SHARDS", str(8 * partitions)))
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{partitions}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    subjects, events = population(n)
    policy = privseg.Policy.from_json(policy_json())

    t_load, one = timed(lambda: privseg.load_pandas(policy, "crm", ["crm"], subjects, events, now=NOW), 1)
    seg = one.compile(SEG)
    t_one, c_one = timed(lambda: one.count(seg))

    sdf = spark.createDataFrame(subjects).cache()
    edf = spark.createDataFrame(events).cache()
    rows = sdf.count() + edf.count()
    t_spark_count, _ = timed(lambda: (sdf.count(), edf.count()))
    run = lambda: ps.segment_count(sdf, edf, policy_json(), "crm", ["crm"], SEG, shards=shards,
                                   partitions=partitions, now=NOW)
    t_sharded, c_sharded = timed(run)
    assert c_sharded == c_one, (c_sharded, c_one)
    parts = ps.partials(sdf, edf, policy_json(), "crm", ["crm"], SEG, kind="count", shards=shards,
                        partitions=partitions, now=NOW)
    parts_m = ps.partials(sdf, edf, policy_json(), "crm", ["crm"], SEG, kind="members", shards=shards,
                          partitions=partitions, now=NOW)
    # Shards kept as durable stores: built once, then each query opens them.
    root = tempfile.mkdtemp(prefix="privseg-shards-")
    keys = lambda: (bytes(range(100, 132)), bytes(range(1, 33)))  # noqa: E731
    t_build, stores = timed(lambda: ps.ShardStores.build(sdf, edf, policy_json(), "crm", ["crm"], root, keys,
                                                         shards=shards, partitions=partitions, now=NOW), 1)
    run_stores = lambda: ps.segment_count(stores, None, policy_json(), "crm", ["crm"], SEG,
                                          partitions=partitions, now=NOW)
    t_stores, c_stores = timed(run_stores)
    assert c_stores == c_one, (c_stores, c_one)
    store_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    shutil.rmtree(root)
    count_bytes = sum(len(p) for p in parts)
    member_bytes = sum(len(p) for p in parts_m)
    input_bytes = len(privseg.subjects_csv(subjects)) + len(privseg.events_jsonl(events))
    per_subject = min(t_sharded, t_stores) / n
    report = {
        "subjects": n,
        "event_rows": len(events),
        "partitions": partitions,
        "shards": shards,
        "one_engine_load_s": round(t_load, 3),
        "one_engine_count_s": round(t_one, 5),
        "spark_sharded_count_s": round(t_sharded, 3),
        "spark_count_s": round(t_spark_count, 3),
        "ratio_to_spark_count": round(t_sharded / t_spark_count, 1),
        "shard_stores_build_s": round(t_build, 3),
        "shard_stores_count_s": round(t_stores, 3),
        "shard_stores_ratio_to_spark_count": round(t_stores / t_spark_count, 2),
        "shard_stores_bytes_per_subject": round(store_bytes / n, 1),
        "input_bytes_per_subject": round(input_bytes / n, 1),
        "count_partial_bytes_per_subject": round(count_bytes / n, 4),
        "members_partial_bytes_per_subject": round(member_bytes / n, 2),
        "members": c_one.value,
        "extrapolated_1B_s_on_these_cores": round(per_subject * 1e9),
        "extrapolated_1B_s_on_1000_cores": round(per_subject * 1e9 * partitions / 1000),
    }
    print(json.dumps(report, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
