"""Segmenting Spark DataFrames with privseg: shards on the executors, one
release on the driver.

Every subject goes to shard ``shard_of(id, shards)`` (first 8 bytes of
SHA-256 of the id, big-endian, modulo ``shards``), computed in Spark SQL.
Subjects, their events and one marker row per shard are repartitioned by
shard into ``partitions`` partitions (few partitions, many shards each);
``mapInArrow`` builds one engine per shard on the executor, and returns
that shard's partial (JSON text). The partials are collected to the driver,
where an engine with the same policy releases ONCE: the k-threshold, the DP
charge and noise, the recipient's agreement and pseudonyms, and one audit
entry committing to every shard's audit root.

A partial is personal data under the controller's control (see
``privseg::shard``): count partials carry counts only; member and export
partials carry the ids (and exported values) of members. Keep the cluster's
task results inside the controller's environment. Pseudonym keys stay on the
driver.

Subjects DataFrame: ``id, jurisdiction, birth_date, verified_at`` and one
column per policy attribute (timestamps as RFC 3339 text or Spark
timestamps, read in the session time zone). Events DataFrame: the JSONL
event fields (``subject, kind, purpose, at, notice_version, notice_sha256,
channel, collector``, ...).
"""

import os
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from . import Engine, Policy, CountResult

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
    from pyspark.sql import DataFrame

__all__ = ["segment_count", "segment_members", "segment_members_chunks", "segment_export",
           "segment_export_chunks", "partials", "ShardStores"]


class ShardStores:
    """One durable, encrypted store per shard under ``root``
    (``root/shard-00000`` ...), each with its own audit log, on a file
    system every executor can reach (a local disk in local mode; a shared
    mount on a cluster). Queries then open the shards' stores on the
    executors instead of reloading the DataFrames: pass a ``ShardStores``
    where the functions below take the subjects DataFrame (and ``None`` for
    the events).

    ``keys`` is called ON THE EXECUTORS and returns ``(kek, audit_key)``
    (32 bytes each), e.g. from the cluster's secret store; the keys are
    never part of the task closure.
    """

    def __init__(self, root: str, shards: int, keys: Callable[[], Tuple[bytes, bytes]]) -> None:
        if shards < 1:
            raise ValueError(f"shards {shards}: expected at least 1")
        self.root = root
        self.shards = shards
        self.keys = keys

    def shard_dir(self, shard: int) -> str:
        return os.path.join(self.root, f"shard-{shard:05d}")

    @classmethod
    def build(cls, subjects: "DataFrame", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
              roles: Sequence[str], root: str, keys: Callable[[], Tuple[bytes, bytes]], *,
              shards: Optional[int] = None, partitions: Optional[int] = None,
              now: Optional[str] = None) -> "ShardStores":
        """Creates every shard's store from the DataFrames (one
        all-or-nothing import per shard; a shard whose store exists is
        refused) and returns them."""
        spark = subjects.sparkSession
        partitions = partitions or max(1, spark.sparkContext.defaultParallelism)
        shards = shards or 8 * partitions
        stores = cls(root, shards, keys)
        rows = _shard_rows(subjects, events, shards, partitions)
        fn = _build_fn(stores, policy_json, actor_id, list(roles), now, list(subjects.columns))
        made = rows.mapInArrow(fn, "shard int, subjects long").collect()
        if sorted(r["shard"] for r in made) != list(range(shards)):
            raise RuntimeError("not every shard's store was built")
        return stores


_SHARD_SQL = "pmod(cast(conv(substr(sha2(cast({col} as string), 256), 1, 16), 16, 10) as decimal(20,0)), {n})"


def _text_columns(df: "DataFrame") -> "DataFrame":
    """Timestamps and dates as RFC 3339 / ISO text, so that JSON carries them exactly."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampType

    cols = []
    for f in df.schema.fields:
        if isinstance(f.dataType, TimestampType):
            cols.append(F.date_format(F.col(f.name), "yyyy-MM-dd'T'HH:mm:ssXXX").alias(f.name))
        elif isinstance(f.dataType, DateType):
            cols.append(F.date_format(F.col(f.name), "yyyy-MM-dd").alias(f.name))
        else:
            cols.append(F.col(f.name))
    return df.select(*cols)


# A subject row as one line of the subjects CSV (docs/formats.md): RFC 4180
# quoting with doubled quotes, missing values as empty cells, no trimming.
_CSV_OPTIONS = {"quote": '"', "escape": '"', "nullValue": "", "ignoreLeadingWhiteSpace": "false",
                "ignoreTrailingWhiteSpace": "false"}


def _csv_columns(df: "DataFrame") -> "DataFrame":
    """Floating columns (integers with gaps often come as doubles) written
    as integers when integral, as :func:`privseg.subjects_csv` does."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    cols = []
    for f in df.schema.fields:
        c = F.col(f.name)
        if isinstance(f.dataType, (DoubleType, FloatType)):
            whole = c.cast("long")
            c = F.when(c == whole, whole.cast("string")).otherwise(c.cast("string"))
        cols.append(c.alias(f.name))
    return df.select(*cols)


def _shard_rows(subjects: "DataFrame", events: "Optional[DataFrame]", shards: int,
                partitions: int) -> "DataFrame":
    """One DataFrame (shard, rec, payload): 'm' a marker per shard, 's' a
    subject as a CSV line, 'e' an event as JSON; repartitioned by shard."""
    from pyspark.sql import functions as F

    spark = subjects.sparkSession
    s = _csv_columns(_text_columns(subjects))
    parts = [
        s.select(
            F.expr(_SHARD_SQL.format(col="id", n=shards)).cast("int").alias("shard"),
            F.lit("s").alias("rec"),
            F.to_csv(F.struct(*[F.col(c) for c in s.columns]), _CSV_OPTIONS).alias("payload"),
        )
    ]
    if events is not None:
        e = _text_columns(events)
        parts.append(
            e.select(
                F.expr(_SHARD_SQL.format(col="subject", n=shards)).cast("int").alias("shard"),
                F.lit("e").alias("rec"),
                F.to_json(F.struct(*[F.col(c) for c in e.columns])).alias("payload"),
            )
        )
    parts.append(
        spark.range(shards).select(
            F.col("id").cast("int").alias("shard"), F.lit("m").alias("rec"), F.lit("").alias("payload")
        )
    )
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.unionByName(p)
    return rows.repartition(partitions, "shard")


def _group(batches) -> "Tuple[dict, dict, set]":
    """The subjects and events of each shard in the batches (JSON texts)."""
    subjects: dict = {}
    events: dict = {}
    seen = set()
    for b in batches:
        shard = b.column(0).to_pylist()
        rec = b.column(1).to_pylist()
        payload = b.column(2).to_pylist()
        for s, r, p in zip(shard, rec, payload):
            seen.add(s)
            if r == "s":
                subjects.setdefault(s, []).append(p)
            elif r == "e":
                events.setdefault(s, []).append(p)
    return subjects, events, seen


def _texts(subs: list, evs: list, columns: List[str]) -> "Tuple[Optional[str], Optional[str]]":
    """Subjects CSV and events JSONL texts of one shard (its subjects as
    CSV lines, its events as JSON lines)."""
    import csv
    import io

    text = None
    if subs:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(columns)
        text = header.getvalue() + "\n".join(subs) + "\n"
    return text, ("\n".join(evs) + "\n" if evs else None)


def _build_fn(stores: ShardStores, policy_json: str, actor_id: str, roles: List[str], now: Optional[str],
              columns: List[str]):
    def run(batches: "Iterator[pyarrow.RecordBatch]") -> "Iterator[pyarrow.RecordBatch]":
        import pyarrow as pa

        from . import Engine as E, Policy as P

        policy = P.from_json(policy_json)
        kek, audit_key = stores.keys()
        subjects, events, seen = _group(batches)
        out_shard, out_n = [], []
        for s in sorted(seen):
            csv, jsonl = _texts(subjects.pop(s, []), events.pop(s, []), columns)
            engine = E.create(stores.shard_dir(s), policy, actor_id, roles, kek, audit_key,
                              subjects_csv=csv, events_jsonl=jsonl, now=now)
            engine.checkpoint()
            out_shard.append(s)
            out_n.append(engine.subject_count)
            del engine
        yield pa.RecordBatch.from_arrays(
            [pa.array(out_shard, pa.int32()), pa.array(out_n, pa.int64())], names=["shard", "subjects"]
        )

    return run


_PARTIALS_SCHEMA = "shard int, partial string, ids string"


def _partials_batch(shards: list, partials: list, split: Optional[str]) -> "pyarrow.RecordBatch":
    """The executor's output: each shard's partial, or with ``split`` (the
    partials' kind) its header and, apart, its ids (a members partial: a
    JSON array) or its rows (an export partial: their JSON, ids and values).
    The header keeps the SHA-256 of what was split off."""
    import json

    import pyarrow as pa

    from . import split_export_partial, split_partial

    ids: list = [""] * len(partials)
    if split == "export":
        parts = [split_export_partial(p) for p in partials]
    elif split:
        parts = [(h, json.dumps(i)) for h, i in (split_partial(p) for p in partials)]
    if split:
        partials = [h for h, _ in parts]
        ids = [i for _, i in parts]
    return pa.RecordBatch.from_arrays(
        [pa.array(shards, pa.int32()), pa.array(partials, pa.string()), pa.array(ids, pa.string())],
        names=["shard", "partial", "ids"],
    )


def _store_partial_fn(stores: ShardStores, policy_json: str, actor_id: str, roles: List[str], segment: str,
                      kind: str, recipient: Optional[str], fields: Optional[List[str]],
                      reference: Optional[str], now: Optional[str], split: bool = False):
    def run(batches: "Iterator[pyarrow.RecordBatch]") -> "Iterator[pyarrow.RecordBatch]":
        from . import Engine as E, Policy as P

        policy = P.from_json(policy_json)
        kek, audit_key = stores.keys()
        out_shard, out_partial = [], []
        for b in batches:
            for s in b.column(0).to_pylist():
                engine = E.open(stores.shard_dir(s), policy, actor_id, roles, kek, audit_key, now=now)
                seg = engine.compile(segment)
                out_shard.append(s)
                out_partial.append(engine.partial(seg, s, stores.shards, kind=kind, recipient=recipient,
                                                  fields=fields, reference=reference))
                del engine
        yield _partials_batch(out_shard, out_partial, kind if split else None)

    return run


def _partial_fn(policy_json: str, actor_id: str, roles: List[str], loader: Optional[tuple],
                segment: str, shards: int,
                kind: str, recipient: Optional[str], fields: Optional[List[str]],
                reference: Optional[str], now: Optional[str], columns: List[str], split: bool = False):
    def run(batches: "Iterator[pyarrow.RecordBatch]") -> "Iterator[pyarrow.RecordBatch]":
        from . import Engine as E, Policy as P

        policy = P.from_json(policy_json)
        subjects, events, seen = _group(batches)
        out_shard, out_partial = [], []
        for s in sorted(seen):
            csv, jsonl = _texts(subjects.pop(s, []), events.pop(s, []), columns)
            load_id, load_roles = loader or (actor_id, roles)
            engine = E.load(policy, load_id, list(load_roles), subjects_csv=csv, events_jsonl=jsonl, now=now)
            engine.set_actor(actor_id, roles)
            seg = engine.compile(segment)
            out_shard.append(s)
            out_partial.append(engine.partial(seg, s, shards, kind=kind, recipient=recipient,
                                              fields=fields, reference=reference))
        yield _partials_batch(out_shard, out_partial, kind if split else None)

    return run


def partials(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
             roles: Sequence[str], segment: str, *, kind: str = "count", recipient: Optional[str] = None,
             fields: Optional[Sequence[str]] = None, shards: Optional[int] = None,
             partitions: Optional[int] = None, reference: Optional[str] = None,
             now: Optional[str] = None, loader: Optional[tuple] = None) -> List[str]:
    """Every shard's partial for ``segment`` (JSON texts, collected to the
    driver). ``shards`` defaults to 8 per partition; ``partitions`` to the
    session's default parallelism. ``loader`` (actor id, roles) loads the
    shard engines when the querying actor may not add subjects."""
    df = _partials_df(subjects, events, policy_json, actor_id, roles, segment, kind, recipient, fields,
                      shards, partitions, reference, now, loader, False)
    got = df.select("shard", "partial").collect()
    return [r["partial"] for r in sorted(got, key=lambda r: r["shard"])]


def _partials_df(subjects, events, policy_json: str, actor_id: str, roles: Sequence[str], segment: str,
                 kind: str, recipient: Optional[str], fields: Optional[Sequence[str]], shards: Optional[int],
                 partitions: Optional[int], reference: Optional[str], now: Optional[str],
                 loader: Optional[tuple], split: bool) -> "DataFrame":
    """The DataFrame (shard, partial, ids) the executors compute, not yet run."""
    reference = _reference(reference, now)
    if isinstance(subjects, ShardStores):
        return _store_partials(subjects, events, policy_json, actor_id, roles, segment, kind, recipient,
                               fields, shards, partitions, reference, now, split)
    spark = subjects.sparkSession
    partitions = partitions or max(1, spark.sparkContext.defaultParallelism)
    shards = shards or 8 * partitions
    rows = _shard_rows(subjects, events, shards, partitions)
    fn = _partial_fn(policy_json, actor_id, list(roles), loader, segment, shards, kind, recipient,
                     None if fields is None else list(fields), reference, now, list(subjects.columns), split)
    return rows.mapInArrow(fn, _PARTIALS_SCHEMA)


def _store_partials(stores: ShardStores, events, policy_json: str, actor_id: str, roles: Sequence[str],
                    segment: str, kind: str, recipient: Optional[str], fields: Optional[Sequence[str]],
                    shards: Optional[int], partitions: Optional[int], reference: Optional[str],
                    now: Optional[str], split: bool) -> "DataFrame":
    from pyspark.sql import SparkSession

    if events is not None:
        raise ValueError("with ShardStores the events are in the stores: pass events=None")
    if shards is not None and shards != stores.shards:
        raise ValueError(f"shards {shards}: the stores have {stores.shards}")
    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError("no active Spark session")
    partitions = partitions or max(1, spark.sparkContext.defaultParallelism)
    ids = spark.range(stores.shards, numPartitions=min(partitions, stores.shards))
    fn = _store_partial_fn(stores, policy_json, actor_id, list(roles), segment, kind, recipient,
                           None if fields is None else list(fields), reference, now, split)
    return ids.selectExpr("cast(id as int) as shard").mapInArrow(fn, _PARTIALS_SCHEMA)


def _reference(reference: Optional[str], now: Optional[str]) -> str:
    """The reference time of every shard's partial: the one given, else
    ``now`` if given, else the driver's clock now (RFC 3339, UTC). Fixed
    once on the driver, so that the shards (whose clocks each default to
    their own now) answer for the same instant and their partials can be
    released together."""
    if reference is not None:
        return reference
    if now is not None:
        return now
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _driver(policy_json: str, actor_id: str, roles: Sequence[str], now: Optional[str]) -> Engine:
    return Engine(Policy.from_json(policy_json), actor_id, list(roles), now=now)


def segment_count(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
                  roles: Sequence[str], segment: str, *, dp: bool = False, epsilon: Optional[str] = None,
                  shards: Optional[int] = None, partitions: Optional[int] = None,
                  reference: Optional[str] = None, now: Optional[str] = None,
                  driver: Optional[Engine] = None, seed: Optional[int] = None,
                  loader: Optional[tuple] = None):
    """The segment's count over the DataFrames: a :class:`CountResult`
    under the k-threshold, or with ``dp=True`` a differentially private
    count (an int) charged once to ``driver``'s ledger."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="count",
                  shards=shards, partitions=partitions, reference=reference, now=now, loader=loader)
    d = driver or _driver(policy_json, actor_id, roles, now)
    seg = d.compile(segment)
    if dp:
        return d.release_dp_count(seg, ps, epsilon=epsilon, seed=seed)
    return d.release_count(seg, ps)


def segment_members(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
                    roles: Sequence[str], segment: str, *, shards: Optional[int] = None,
                    partitions: Optional[int] = None, reference: Optional[str] = None,
                    now: Optional[str] = None, driver: Optional[Engine] = None,
                    loader: Optional[tuple] = None) -> List[str]:
    """The ids of the segment's members (needs ``member_ids``), in shard order."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="members",
                  shards=shards, partitions=partitions, reference=reference, now=now, loader=loader)
    d = driver or _driver(policy_json, actor_id, roles, now)
    return d.release_members(d.compile(segment), ps)


def segment_members_chunks(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]",
                           policy_json: str, actor_id: str, roles: Sequence[str], segment: str, *,
                           shards: Optional[int] = None, partitions: Optional[int] = None,
                           reference: Optional[str] = None, now: Optional[str] = None,
                           driver: Optional[Engine] = None,
                           loader: Optional[tuple] = None) -> Iterator[List[str]]:
    """The ids of the segment's members a shard at a time (needs
    ``member_ids``), for member lists too large to hold on the driver. The
    executors split each shard's partial into a header and its ids; the
    driver collects the headers only, applies the gate and records the
    release of every member once, before the first ids come out; then each
    shard's ids stream from the executors (``toLocalIterator``) and are
    checked against the SHA-256 in their header. The driver holds one
    shard's ids at a time. The partials are kept on the executors while
    the generator runs (persisted, then unpersisted)."""
    import json

    df = _partials_df(subjects, events, policy_json, actor_id, roles, segment, "members", None, None,
                      shards, partitions, reference, now, loader, True).persist()
    try:
        headers = [r["partial"] for r in sorted(df.select("shard", "partial").collect(),
                                                key=lambda r: r["shard"])]
        d = driver or _driver(policy_json, actor_id, roles, now)
        release = d.release_members_split(d.compile(segment), headers)
        for r in df.select("shard", "ids").toLocalIterator():
            yield release.ids(r["shard"], json.loads(r["ids"]))
        if release.pending:
            raise RuntimeError(f"the ids of shards {release.pending} never came")
    finally:
        df.unpersist()


def segment_export(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
                   roles: Sequence[str], segment: str, recipient: str, fields: Sequence[str], key: bytes, *,
                   format: str = "jsonl", key_version: int = 1, shards: Optional[int] = None,
                   partitions: Optional[int] = None, reference: Optional[str] = None,
                   now: Optional[str] = None, driver: Optional[Engine] = None,
                   loader: Optional[tuple] = None) -> str:
    """The export to ``recipient`` (rows as text), pseudonymised on the driver."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="export",
                  recipient=recipient, fields=list(fields), shards=shards, partitions=partitions,
                  reference=reference, now=now, loader=loader)
    d = driver or _driver(policy_json, actor_id, roles, now)
    return d.release_export(d.compile(segment), ps, recipient, list(fields), key, format=format,
                            key_version=key_version)


def segment_export_chunks(subjects: "Union[DataFrame, ShardStores]", events: "Optional[DataFrame]",
                          policy_json: str, actor_id: str, roles: Sequence[str], segment: str, recipient: str,
                          fields: Sequence[str], key: bytes, *, format: str = "jsonl", key_version: int = 1,
                          shards: Optional[int] = None, partitions: Optional[int] = None,
                          reference: Optional[str] = None, now: Optional[str] = None,
                          driver: Optional[Engine] = None, loader: Optional[tuple] = None) -> Iterator[str]:
    """The export to ``recipient`` a shard at a time (export text, ids
    pseudonymised on the driver), for exports too large to hold on the
    driver. The executors split each shard's export partial into a header
    and its rows; the driver collects the headers only, applies the gate of
    :func:`segment_export` (permission, the recipient's agreement for the
    fields and what the selection reads, coverage, policy, segment, age)
    and records the export of every row once, before the first row comes
    out; then each shard's rows stream from the executors
    (``toLocalIterator``), are checked against the SHA-256 in their header
    and pseudonymised. The chunks concatenated are one export (a CSV header
    line once, first), with the pseudonyms :func:`segment_export` gives.
    The partials are kept on the executors while the generator runs
    (persisted, then unpersisted)."""
    df = _partials_df(subjects, events, policy_json, actor_id, roles, segment, "export", recipient,
                      list(fields), shards, partitions, reference, now, loader, True).persist()
    try:
        headers = [r["partial"] for r in sorted(df.select("shard", "partial").collect(),
                                                key=lambda r: r["shard"])]
        d = driver or _driver(policy_json, actor_id, roles, now)
        release = d.release_export_split(d.compile(segment), headers, recipient, list(fields), key,
                                         format=format, key_version=key_version)
        for r in df.select("shard", "ids").toLocalIterator():
            yield release.rows(r["shard"], r["ids"])
        if release.pending:
            raise RuntimeError(f"the rows of shards {release.pending} never came")
    finally:
        df.unpersist()
