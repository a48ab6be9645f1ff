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

from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence

from . import Engine, Policy, CountResult, subjects_csv

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
    from pyspark.sql import DataFrame

__all__ = ["segment_count", "segment_members", "segment_export", "partials"]

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


def _shard_rows(subjects: "DataFrame", events: "Optional[DataFrame]", shards: int,
                partitions: int) -> "DataFrame":
    """One DataFrame (shard, rec, payload): 'm' a marker per shard, 's' a
    subject as JSON, 'e' an event as JSON; repartitioned by shard."""
    from pyspark.sql import functions as F

    spark = subjects.sparkSession
    s = _text_columns(subjects)
    parts = [
        s.select(
            F.expr(_SHARD_SQL.format(col="id", n=shards)).cast("int").alias("shard"),
            F.lit("s").alias("rec"),
            F.to_json(F.struct(*[F.col(c) for c in s.columns])).alias("payload"),
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


def _partial_fn(policy_json: str, actor_id: str, roles: List[str], loader: Optional[tuple],
                segment: str, shards: int,
                kind: str, recipient: Optional[str], fields: Optional[List[str]],
                reference: Optional[str], now: Optional[str], columns: List[str]):
    def run(batches: "Iterator[pyarrow.RecordBatch]") -> "Iterator[pyarrow.RecordBatch]":
        import json

        import pandas as pd
        import pyarrow as pa

        from . import Engine as E, Policy as P

        policy = P.from_json(policy_json)
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
        out_shard, out_partial = [], []
        for s in sorted(seen):
            subs = subjects.pop(s, [])
            csv = None
            if subs:
                frame = pd.DataFrame.from_records([json.loads(x) for x in subs], columns=columns)
                csv = subjects_csv(frame)
            evs = events.pop(s, [])
            load_id, load_roles = loader or (actor_id, roles)
            engine = E.load(policy, load_id, list(load_roles), subjects_csv=csv,
                            events_jsonl="\n".join(evs) + "\n" if evs else None, now=now)
            engine.set_actor(actor_id, roles)
            seg = engine.compile(segment)
            out_shard.append(s)
            out_partial.append(engine.partial(seg, s, shards, kind=kind, recipient=recipient,
                                              fields=fields, reference=reference))
        yield pa.RecordBatch.from_arrays(
            [pa.array(out_shard, pa.int32()), pa.array(out_partial, pa.string())],
            names=["shard", "partial"],
        )

    return run


def partials(subjects: "DataFrame", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
             roles: Sequence[str], segment: str, *, kind: str = "count", recipient: Optional[str] = None,
             fields: Optional[Sequence[str]] = None, shards: Optional[int] = None,
             partitions: Optional[int] = None, reference: Optional[str] = None,
             now: Optional[str] = None, loader: Optional[tuple] = None) -> List[str]:
    """Every shard's partial for ``segment`` (JSON texts, collected to the
    driver). ``shards`` defaults to 8 per partition; ``partitions`` to the
    session's default parallelism. ``loader`` (actor id, roles) loads the
    shard engines when the querying actor may not add subjects."""
    spark = subjects.sparkSession
    partitions = partitions or max(1, spark.sparkContext.defaultParallelism)
    shards = shards or 8 * partitions
    rows = _shard_rows(subjects, events, shards, partitions)
    fn = _partial_fn(policy_json, actor_id, list(roles), loader, segment, shards, kind, recipient,
                     None if fields is None else list(fields), reference, now, list(subjects.columns))
    got = rows.mapInArrow(fn, "shard int, partial string").collect()
    return [r["partial"] for r in sorted(got, key=lambda r: r["shard"])]


def _driver(policy_json: str, actor_id: str, roles: Sequence[str], now: Optional[str]) -> Engine:
    return Engine(Policy.from_json(policy_json), actor_id, list(roles), now=now)


def segment_count(subjects: "DataFrame", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
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


def segment_members(subjects: "DataFrame", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
                    roles: Sequence[str], segment: str, *, shards: Optional[int] = None,
                    partitions: Optional[int] = None, reference: Optional[str] = None,
                    now: Optional[str] = None, driver: Optional[Engine] = None,
                    loader: Optional[tuple] = None) -> List[str]:
    """The ids of the segment's members (needs ``member_ids``), in shard order."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="members",
                  shards=shards, partitions=partitions, reference=reference, now=now, loader=loader)
    d = driver or _driver(policy_json, actor_id, roles, now)
    return d.release_members(d.compile(segment), ps)


def segment_export(subjects: "DataFrame", events: "Optional[DataFrame]", policy_json: str, actor_id: str,
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
