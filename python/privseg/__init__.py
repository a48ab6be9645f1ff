"""privseg: privacy-compliant customer segmentation (GDPR/CCPA).

The engine judges every subject's eligibility as of the host clock, applies
the policy's purpose limits, and releases data only through one gate that
records the release in a tamper-evident audit log first.

>>> import privseg
>>> policy = privseg.Policy.from_file("policy.json")            # doctest: +SKIP
>>> engine = privseg.Engine.load(policy, "crm-sync", ["crm"],
...     subjects_csv=open("subjects.csv").read())                 # doctest: +SKIP
>>> seg = engine.compile('segment "fr" for marketing.email where country = "FR"')  # doctest: +SKIP
>>> engine.count(seg)                                              # doctest: +SKIP
CountResult(value=1234)

Pandas, Arrow and Parquet data load with :func:`load_pandas`,
:func:`load_arrow` and :func:`load_parquet`; a durable, encrypted store is
made with :meth:`Engine.create` and reopened with :meth:`Engine.open`;
Spark DataFrames are segmented with :mod:`privseg.spark`, Dask DataFrames
with :mod:`privseg.dask`.
"""

from typing import TYPE_CHECKING, Any, Optional, Sequence

from . import errors
from ._privseg import (CountResult, Engine, ExportRelease, MembersRelease, Policy, Segment, shard_of,
                       split_export_partial, split_partial)
from .errors import *  # noqa: F401,F403

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

__all__ = [
    "Policy",
    "Engine",
    "Segment",
    "CountResult",
    "shard_of",
    "split_partial",
    "split_export_partial",
    "MembersRelease",
    "ExportRelease",
    "load_pandas",
    "load_arrow",
    "load_parquet",
    "subjects_csv",
    "events_jsonl",
    "errors",
] + errors.__all__


def _time_text(v: Any) -> Optional[str]:
    """An RFC 3339 UTC text for a datetime-like value (None for missing)."""
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, str):
        return v
    ts = pd.Timestamp(v)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def subjects_csv(df: "pandas.DataFrame") -> str:
    """The subjects CSV text (docs/formats.md) of a pandas DataFrame with
    the columns ``id, jurisdiction, birth_date, verified_at`` and one per
    policy attribute. Missing values become empty cells; integral floats
    (from columns with gaps) are written as integers; datetimes as RFC 3339
    UTC; dates as ``YYYY-MM-DD``; booleans as ``true``/``false``."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if c == "birth_date":
            out[c] = s.map(lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v))
                           else (v if isinstance(v, str) else pd.Timestamp(v).strftime("%Y-%m-%d")))
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[c] = s.map(_time_text)
        elif pd.api.types.is_bool_dtype(s):
            out[c] = s.map(lambda v: None if pd.isna(v) else ("true" if v else "false"))
        elif pd.api.types.is_float_dtype(s):
            nonnull = s.dropna()
            if (nonnull == nonnull.round()).all():
                out[c] = s.astype("Int64")
            else:
                out[c] = s
        elif pd.api.types.is_object_dtype(s):
            out[c] = s.map(lambda v: ("true" if v else "false") if isinstance(v, bool) else v)
        else:
            out[c] = s
    return out.to_csv(index=False, lineterminator="\n")


def events_jsonl(df: "pandas.DataFrame") -> str:
    """The consent events JSONL text of a pandas DataFrame whose columns are
    event fields (``subject, kind, purpose, at, notice_version,
    notice_sha256, channel, collector``, ...). Missing values are left out."""
    import json

    import pandas as pd

    lines = []
    for rec in df.to_dict(orient="records"):
        ev = {}
        for k, v in rec.items():
            if v is None or (not isinstance(v, (str, list, dict)) and pd.isna(v)):
                continue
            if k in ("at", "expires_at"):
                v = _time_text(v)
            elif hasattr(v, "item"):
                v = v.item()
            ev[k] = v
        lines.append(json.dumps(ev))
    return "\n".join(lines) + ("\n" if lines else "")


def load_pandas(
    policy: Policy,
    actor_id: str,
    roles: Sequence[str],
    subjects: "pandas.DataFrame",
    events: "Optional[pandas.DataFrame]" = None,
    now: Optional[str] = None,
) -> Engine:
    """An engine loaded from pandas DataFrames of subjects and consent
    events, in one all-or-nothing import (see :func:`subjects_csv`,
    :func:`events_jsonl`)."""
    return Engine.load(
        policy,
        actor_id,
        list(roles),
        subjects_csv=subjects_csv(subjects),
        events_jsonl=None if events is None else events_jsonl(events),
        now=now,
    )


def load_arrow(
    policy: Policy,
    actor_id: str,
    roles: Sequence[str],
    subjects: "pyarrow.Table",
    events: "Optional[pyarrow.Table]" = None,
    now: Optional[str] = None,
) -> Engine:
    """An engine loaded from Arrow tables (converted through pandas)."""
    return load_pandas(
        policy,
        actor_id,
        roles,
        subjects.to_pandas(),
        None if events is None else events.to_pandas(),
        now=now,
    )


def load_parquet(
    policy: Policy,
    actor_id: str,
    roles: Sequence[str],
    subjects: str,
    events: Optional[str] = None,
    now: Optional[str] = None,
) -> Engine:
    """An engine loaded from Parquet files of subjects and consent events
    (the columns of :func:`subjects_csv` and :func:`events_jsonl`), in one
    all-or-nothing import."""
    import pyarrow.parquet as pq

    return load_arrow(
        policy,
        actor_id,
        roles,
        pq.read_table(subjects),
        None if events is None else pq.read_table(events),
        now=now,
    )
