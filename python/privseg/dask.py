"""Segmenting Dask DataFrames with privseg: shards built in the partitions'
tasks, one release in the client.

Every subject goes to shard ``shard_of(id, shards)`` (first 8 bytes of
SHA-256 of the id, big-endian, modulo ``shards``), its events to its
subject's shard. The subjects and events are shuffled on the shard into
``partitions`` partitions (the same shard lands in the same partition of
both: Dask hashes the same values alike); each pair of partitions is one
task, which loads one engine per shard it holds and returns that shard's
partial (JSON text). Shards that hold nobody get the partial of an empty
engine. The partials are gathered in the client, where an engine with the
same policy releases ONCE: the k-threshold, the DP charge and noise, the
recipient's agreement and pseudonyms, and one audit entry committing to
every shard's audit root; exactly as :mod:`privseg.spark` does.

A partial is personal data under the controller's control (see
``privseg::shard``): count partials carry counts only; member and export
partials carry the ids (and exported values) of members. Keep the cluster's
task results inside the controller's environment. Pseudonym keys stay in
the client.

Subjects DataFrame: ``id, jurisdiction, birth_date, verified_at`` and one
column per policy attribute (as :func:`privseg.subjects_csv` takes them).
Events DataFrame: the JSONL event fields (``subject, kind, purpose, at,
notice_version, notice_sha256, channel, collector``, ...).
"""

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from . import Engine, Policy, load_pandas, shard_of

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe
    import pandas

__all__ = ["segment_count", "segment_members", "segment_export", "partials"]


def _with_shard(df: "dask.dataframe.DataFrame", col: str, shards: int) -> "dask.dataframe.DataFrame":
    """``df`` with a ``_shard`` column (int64) computed from ``col``."""

    import pandas as pd

    def add(part: "pandas.DataFrame") -> "pandas.DataFrame":
        shard = [shard_of(str(i), shards) for i in part[col]]
        return part.assign(_shard=pd.Series(shard, index=part.index, dtype="int64"))

    return df.map_partitions(add, meta=_empty(df))


def _empty(df: "dask.dataframe.DataFrame") -> "pandas.DataFrame":
    """An empty pandas frame of ``df``'s columns and a ``_shard`` column."""
    import pandas as pd

    return df._meta.assign(_shard=pd.Series([], index=df._meta.index, dtype="int64"))


def _shard_partials(subjects: "pandas.DataFrame", events: "Optional[pandas.DataFrame]", policy_json: str,
                    actor_id: str, roles: List[str], loader: Optional[tuple], segment: str, shards: int,
                    kind: str, recipient: Optional[str], fields: Optional[List[str]],
                    reference: Optional[str], now: Optional[str], only: Optional[List[int]] = None
                    ) -> List[Tuple[int, str]]:
    """One task: the partial of every shard in ``subjects`` and ``events``
    (or of the shards ``only``, which may be empty)."""
    policy = Policy.from_json(policy_json)
    seen = set(subjects["_shard"].tolist())
    if events is not None:
        seen |= set(events["_shard"].tolist())
    out = []
    load_id, load_roles = loader or (actor_id, roles)
    for s in sorted(seen if only is None else only):
        sub = subjects[subjects["_shard"] == s].drop(columns="_shard")
        ev = None
        if events is not None:
            ev = events[events["_shard"] == s].drop(columns="_shard")
            ev = ev if len(ev) else None
        engine = load_pandas(policy, load_id, list(load_roles), sub, ev, now=now)
        engine.set_actor(actor_id, list(roles))
        seg = engine.compile(segment)
        out.append((int(s), engine.partial(seg, int(s), shards, kind=kind, recipient=recipient,
                                           fields=fields, reference=reference)))
    return out


def partials(subjects: "dask.dataframe.DataFrame", events: "Optional[dask.dataframe.DataFrame]",
             policy_json: str, actor_id: str, roles: Sequence[str], segment: str, *, kind: str = "count",
             recipient: Optional[str] = None, fields: Optional[Sequence[str]] = None,
             shards: Optional[int] = None, partitions: Optional[int] = None,
             reference: Optional[str] = None, now: Optional[str] = None,
             loader: Optional[tuple] = None, scheduler: Optional[str] = None) -> List[str]:
    """Every shard's partial for ``segment`` (JSON texts, gathered in the
    client, in shard order). ``partitions`` defaults to the subjects'
    partition count, ``shards`` to 4 per partition. ``loader`` (actor id,
    roles) loads the shard engines when the querying actor may not add
    subjects. ``scheduler`` is passed to ``dask.compute``."""
    import dask

    from .spark import _reference

    reference = _reference(reference, now)
    partitions = partitions or subjects.npartitions
    shards = shards or 4 * partitions
    if shards < 1 or partitions < 1:
        raise ValueError(f"shards {shards}, partitions {partitions}: expected at least 1 each")
    roles = list(roles)
    fields = None if fields is None else list(fields)
    s = _with_shard(subjects, "id", shards).shuffle(on="_shard", npartitions=partitions)
    s_parts = s.to_delayed()
    e_parts: list = [None] * len(s_parts)
    if events is not None:
        e = _with_shard(events, "subject", shards).shuffle(on="_shard", npartitions=partitions)
        e_parts = e.to_delayed()
        if len(e_parts) != len(s_parts):
            raise RuntimeError("the subjects and events were not shuffled into as many partitions")
    task = dask.delayed(_shard_partials, pure=False)
    args = (policy_json, actor_id, roles, loader, segment, shards, kind, recipient, fields, reference, now)
    got = dask.compute(*[task(sp, ep, *args) for sp, ep in zip(s_parts, e_parts)], scheduler=scheduler)
    by_shard = {}
    for part in got:
        for shard, p in part:
            if shard in by_shard:
                # The shuffle put one shard in two partitions: its subjects
                # would be split between two engines.
                raise RuntimeError(f"shard {shard} came from two partitions")
            by_shard[shard] = p
    missing = [k for k in range(shards) if k not in by_shard]
    if missing:
        # Shards that hold nobody: the partials of empty engines.
        for shard, p in _shard_partials(_empty(subjects), None, *args, only=missing):
            by_shard[shard] = p
    return [by_shard[k] for k in range(shards)]


def _driver(policy_json: str, actor_id: str, roles: Sequence[str], now: Optional[str]) -> Engine:
    return Engine(Policy.from_json(policy_json), actor_id, list(roles), now=now)


def segment_count(subjects: "dask.dataframe.DataFrame", events: "Optional[dask.dataframe.DataFrame]",
                  policy_json: str, actor_id: str, roles: Sequence[str], segment: str, *, dp: bool = False,
                  epsilon: Optional[str] = None, shards: Optional[int] = None,
                  partitions: Optional[int] = None, reference: Optional[str] = None,
                  now: Optional[str] = None, driver: Optional[Engine] = None, seed: Optional[int] = None,
                  loader: Optional[tuple] = None, scheduler: Optional[str] = None):
    """The segment's count over the DataFrames: a :class:`CountResult`
    under the k-threshold, or with ``dp=True`` a differentially private
    count (an int) charged once to ``driver``'s ledger."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="count", shards=shards,
                  partitions=partitions, reference=reference, now=now, loader=loader, scheduler=scheduler)
    d = driver or _driver(policy_json, actor_id, roles, now)
    seg = d.compile(segment)
    if dp:
        return d.release_dp_count(seg, ps, epsilon=epsilon, seed=seed)
    return d.release_count(seg, ps)


def segment_members(subjects: "dask.dataframe.DataFrame", events: "Optional[dask.dataframe.DataFrame]",
                    policy_json: str, actor_id: str, roles: Sequence[str], segment: str, *,
                    shards: Optional[int] = None, partitions: Optional[int] = None,
                    reference: Optional[str] = None, now: Optional[str] = None,
                    driver: Optional[Engine] = None, loader: Optional[tuple] = None,
                    scheduler: Optional[str] = None) -> List[str]:
    """The ids of the segment's members (needs ``member_ids``), in shard order."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="members", shards=shards,
                  partitions=partitions, reference=reference, now=now, loader=loader, scheduler=scheduler)
    d = driver or _driver(policy_json, actor_id, roles, now)
    return d.release_members(d.compile(segment), ps)


def segment_export(subjects: "dask.dataframe.DataFrame", events: "Optional[dask.dataframe.DataFrame]",
                   policy_json: str, actor_id: str, roles: Sequence[str], segment: str, recipient: str,
                   fields: Sequence[str], key: bytes, *, format: str = "jsonl", key_version: int = 1,
                   shards: Optional[int] = None, partitions: Optional[int] = None,
                   reference: Optional[str] = None, now: Optional[str] = None,
                   driver: Optional[Engine] = None, loader: Optional[tuple] = None,
                   scheduler: Optional[str] = None) -> str:
    """The export to ``recipient`` (rows as text), pseudonymised in the client."""
    ps = partials(subjects, events, policy_json, actor_id, roles, segment, kind="export", recipient=recipient,
                  fields=list(fields), shards=shards, partitions=partitions, reference=reference, now=now,
                  loader=loader, scheduler=scheduler)
    d = driver or _driver(policy_json, actor_id, roles, now)
    return d.release_export(d.compile(segment), ps, recipient, list(fields), key, format=format,
                            key_version=key_version)
