"""privseg.spark on a local Spark session: count, DP count, members and
export over a sharded population equal one engine's answers."""

import os

import pytest

pyspark = pytest.importorskip("pyspark")

import privseg  # noqa: E402
import privseg.spark as ps  # noqa: E402
from privseg import errors  # noqa: E402

from conftest import KEY, NOW, policy_json, population  # noqa: E402

DE = 'segment "de" for marketing.email where country = "DE" or total_spend > 400'


@pytest.fixture(scope="module")
def spark():
    import sys

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The workers run this interpreter (the one with privseg installed).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .appName("privseg-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def data(spark):
    subjects, events = population(300)
    one = privseg.load_pandas(privseg.Policy.from_json(policy_json()), "crm", ["crm"], subjects, events, now=NOW)
    return spark.createDataFrame(subjects), spark.createDataFrame(events), one


def test_count_equals_one_engine(data):
    s, e, one = data
    got = ps.segment_count(s, e, policy_json(), "crm", ["crm"], DE, shards=13, partitions=2, now=NOW)
    assert got == one.count(one.compile(DE))
    assert got.value is not None and got.value > 3


def test_dp_count_draws_noise_once(data):
    s, e, one = data
    got = ps.segment_count(s, e, policy_json(), "crm", ["crm"], DE, dp=True, seed=11,
                           shards=5, partitions=2, now=NOW)
    assert got == one.dp_count(one.compile(DE), seed=11)


def test_members_equal_one_engine(data):
    s, e, one = data
    got = ps.segment_members(s, e, policy_json(), "crm", ["crm"], DE, shards=16, partitions=2, now=NOW)
    want = one.evaluate(one.compile(DE))
    assert len(want) > 10
    assert sorted(got) == sorted(want)


def test_export_equals_one_engine(data):
    s, e, one = data
    for fmt in ("jsonl", "csv"):
        got = ps.segment_export(s, e, policy_json(), "crm", ["crm"], DE, "mailer", ["country", "total_spend"],
                                KEY, format=fmt, shards=7, partitions=2, now=NOW)
        want = one.export(one.compile(DE), "mailer", ["country", "total_spend"], KEY, format=fmt)
        assert sorted(got.splitlines()) == sorted(want.splitlines())


def test_the_gate_applies_on_the_cluster(data):
    s, e, _ = data
    # An analyst may count but not read ids: the executors refuse the partial.
    loader = ("crm", ["crm"])
    with pytest.raises(Exception) as x:
        ps.segment_members(s, e, policy_json(), "ana", ["analyst"], DE, shards=4, partitions=2, now=NOW,
                           loader=loader)
    assert "AccessDenied" in str(x.value) and "member_ids" in str(x.value)
    # Without the loader the analyst cannot even load the shards.
    with pytest.raises(Exception) as x:
        ps.segment_count(s, e, policy_json(), "ana", ["analyst"], DE, shards=4, partitions=2, now=NOW)
    assert "AccessDenied" in str(x.value)
    got = ps.segment_count(s, e, policy_json(), "ana", ["analyst"], DE, shards=4, partitions=2, now=NOW,
                           loader=loader)
    assert got.value is not None


KEKS = (bytes(range(100, 132)), bytes(range(1, 33)))


@pytest.fixture(scope="module")
def stores(data, tmp_path_factory):
    s, e, _ = data
    root = str(tmp_path_factory.mktemp("shards"))
    # Called on the executors: pickled by value (a function of this test
    # module would be pickled by reference, and workers cannot import it).
    keys = lambda: (bytes(range(100, 132)), bytes(range(1, 33)))  # noqa: E731
    return ps.ShardStores.build(s, e, policy_json(), "crm", ["crm"], root, keys, shards=6, partitions=2,
                                now=NOW)


def test_shard_stores_answer_what_one_engine_answers(data, stores):
    _, _, one = data
    seg = one.compile(DE)
    assert sorted(os.listdir(stores.root)) == [f"shard-{i:05d}" for i in range(6)]
    got = ps.segment_count(stores, None, policy_json(), "crm", ["crm"], DE, partitions=2, now=NOW)
    assert got == one.count(seg)
    members = ps.segment_members(stores, None, policy_json(), "crm", ["crm"], DE, partitions=2, now=NOW)
    assert sorted(members) == sorted(one.evaluate(seg))
    out = ps.segment_export(stores, None, policy_json(), "crm", ["crm"], DE, "mailer", ["country"], KEY,
                            partitions=2, now=NOW)
    assert sorted(out.splitlines()) == sorted(one.export(seg, "mailer", ["country"], KEY).splitlines())


def test_shard_stores_keep_the_gate_and_see_every_write(data, stores):
    _, _, one = data
    # An analyst may count but not read ids, on the executors too.
    with pytest.raises(Exception) as x:
        ps.segment_members(stores, None, policy_json(), "ana", ["analyst"], DE, partitions=2, now=NOW)
    assert "AccessDenied" in str(x.value)
    # The shard count must match the stores', and events live in the stores.
    with pytest.raises(ValueError, match="shards 5"):
        ps.segment_count(stores, None, policy_json(), "crm", ["crm"], DE, shards=5, now=NOW)
    # A subject erased in its shard's store is gone from the next query.
    members = ps.segment_members(stores, None, policy_json(), "crm", ["crm"], DE, partitions=2, now=NOW)
    victim = members[0]
    shard = privseg.shard_of(victim, stores.shards)
    e = privseg.Engine.open(stores.shard_dir(shard), privseg.Policy.from_json(policy_json()), "crm", ["crm"],
                            *KEKS, now=NOW)
    e.erase(victim)
    del e
    after = ps.segment_members(stores, None, policy_json(), "crm", ["crm"], DE, partitions=2, now=NOW)
    assert sorted(after) == sorted(m for m in members if m != victim)
    # A shard missing from the root is an error, never a silently smaller answer.
    os.rename(stores.shard_dir(0), stores.shard_dir(0) + ".moved")
    try:
        with pytest.raises(Exception) as x:
            ps.segment_count(stores, None, policy_json(), "crm", ["crm"], DE, partitions=2, now=NOW)
        assert "no store here" in str(x.value)
    finally:
        os.rename(stores.shard_dir(0) + ".moved", stores.shard_dir(0))


def test_members_in_chunks_equal_one_engine_a_shard_at_a_time(data, stores):
    s, e, one = data
    # (The stores may have lost a subject to an erasure test: compare them
    # with their own whole release.)
    for source, events, want in (
        (s, e, one.evaluate(one.compile(DE))),
        (stores, None, ps.segment_members(stores, None, policy_json(), "crm", ["crm"], DE, now=NOW)),
    ):
        chunks = list(ps.segment_members_chunks(source, events, policy_json(), "crm", ["crm"], DE,
                                                shards=6, partitions=2, now=NOW))
        assert len(chunks) == 6
        assert sorted(i for c in chunks for i in c) == sorted(want)
        for c in chunks:
            assert len({privseg.shard_of(i, 6) for i in c}) <= 1
    # Without member_ids nothing comes out, not even a first chunk.
    with pytest.raises(Exception) as x:
        next(ps.segment_members_chunks(stores, None, policy_json(), "ana", ["analyst"], DE, partitions=2,
                                       now=NOW))
    assert "AccessDenied" in str(x.value)


def test_export_in_chunks_equals_one_engine_a_shard_at_a_time(data, stores):
    s, e, one = data
    fields = ["country", "total_spend"]
    for fmt in ("jsonl", "csv"):
        # (The stores may have lost a subject to an erasure test: compare
        # them with their own whole export.)
        for source, events, want in (
            (s, e, one.export(one.compile(DE), "mailer", fields, KEY, format=fmt)),
            (stores, None, ps.segment_export(stores, None, policy_json(), "crm", ["crm"], DE, "mailer", fields,
                                             KEY, format=fmt, now=NOW)),
        ):
            chunks = list(ps.segment_export_chunks(source, events, policy_json(), "crm", ["crm"], DE, "mailer",
                                                   fields, KEY, format=fmt, shards=6, partitions=2, now=NOW))
            assert len(chunks) == 6
            # One export: the same rows and pseudonyms, a CSV header once.
            assert sorted("".join(chunks).splitlines()) == sorted(want.splitlines())
    # Without the export permission, or for a recipient whose agreement
    # does not cover what the selection reads, nothing comes out.
    loader = ("crm", ["crm"])
    with pytest.raises(Exception) as x:
        next(ps.segment_export_chunks(s, e, policy_json(), "ana", ["analyst"], DE, "mailer", fields, KEY,
                                      shards=4, partitions=2, now=NOW, loader=loader))
    assert "AccessDenied" in str(x.value)
    with pytest.raises(Exception) as x:
        next(ps.segment_export_chunks(stores, None, policy_json(), "crm", ["crm"], DE, "geo", ["country"], KEY,
                                      partitions=2, now=NOW))
    assert "ExportRefused" in str(x.value)


def test_rows_travel_as_csv_with_quotes_and_integral_doubles(spark):
    import pandas as pd

    # Ids holding a comma, quotes and a space; spend as doubles with gaps
    # (integral: written as integers).
    subjects, events = population(30)
    subjects = subjects.copy()
    events = events.copy()
    odd = {"c-00001": 'c,"1"', "c-00002": "c 2,x"}
    subjects["id"] = subjects["id"].replace(odd)
    events["subject"] = events["subject"].replace(odd)
    assert pd.api.types.is_float_dtype(subjects["total_spend"])
    one = privseg.load_pandas(privseg.Policy.from_json(policy_json()), "crm", ["crm"], subjects, events, now=NOW)
    want = one.evaluate(one.compile(DE))
    assert set(odd.values()) & set(want)
    got = ps.segment_members(spark.createDataFrame(subjects), spark.createDataFrame(events), policy_json(), "crm",
                             ["crm"], DE, shards=3, partitions=2, now=NOW)
    assert sorted(got) == sorted(want)


def test_the_readme_examples_run(spark, tmp_path):
    """The Python blocks of the README's Spark and Dask section, run as
    written but for the paths, secrets and sinks, over a small population.
    (Without a reference time given, the driver fixes one for every shard:
    shards that each took their own now could not be released together.)"""
    import json
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Scale-out with Python and Spark", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 3, "the section's examples"
    try:
        import dask.dataframe  # noqa: F401
    except ImportError:
        blocks = [b for b in blocks if "privseg.dask" not in b]

    # The policy the examples assume: a loader, an analyst, a crm role and
    # a last_order attribute.
    policy = json.loads(policy_json())
    policy["attributes"].append({"name": "last_order", "type": "timestamp", "category": "user.commerce"})
    policy["roles"] += [{"name": "loader", "subjects": True}]
    policy_path = tmp_path / "policy.json"
    policy_path.write_text(json.dumps(policy))
    subjects, events = population(200)
    subjects["last_order"] = [None if i % 4 == 0 else "2025-06-01T00:00:00Z" for i in range(len(subjects))]
    subjects["country"] = ["FR" if i % 2 else c for i, c in enumerate(subjects["country"])]
    spark.createDataFrame(subjects).write.parquet(str(tmp_path / "subjects"))
    spark.createDataFrame(events).write.parquet(str(tmp_path / "consents"))
    (tmp_path / "exports").mkdir()
    (tmp_path / "pseudonym.key").write_bytes(KEY)
    synced = []
    ns = {
        "__name__": "__main__",
        "read_secret": lambda name: {"privseg/kek": bytes(range(100, 132)),
                                     "privseg/audit-key": bytes(range(1, 33))}[name],
        "sync_to_mailer": synced.extend,
    }
    for b in blocks:
        b = (b.replace("s3://crm/", str(tmp_path) + "/").replace('"policy.json"', repr(str(policy_path)))
             .replace("/dbfs/privseg/shards", str(tmp_path / "shards"))
             .replace("/secrets/pseudonym.key", str(tmp_path / "pseudonym.key"))
             .replace("/exports/", str(tmp_path / "exports") + "/"))
        exec(compile(b, "README.md", "exec"), ns)
    one = privseg.load_pandas(privseg.Policy.from_json(policy_path.read_text()), "crm", ["crm"], subjects, events)
    seg = one.compile(ns["seg"])
    members = one.evaluate(seg)
    assert len(members) > 3
    assert ns["n"] == one.count(seg)
    assert sorted(synced) == sorted(members)
    exported = (tmp_path / "exports" / "mailer.csv").read_text()
    assert sorted(exported.splitlines()) == sorted(one.export(seg, "mailer", ["country"], KEY,
                                                              format="csv").splitlines())
    if "ids" in ns:
        assert sorted(ns["ids"]) == sorted(members)
