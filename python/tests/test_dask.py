"""privseg.dask over a sharded population: count, DP count, members and
export equal one engine's answers, released once in the client."""

import pytest

dd = pytest.importorskip("dask.dataframe")

import privseg  # noqa: E402
import privseg.dask as pd_  # noqa: E402
from privseg import errors  # noqa: E402

from conftest import KEY, NOW, policy_json, population  # noqa: E402

DE = 'segment "de" for marketing.email where country = "DE" or total_spend > 400'


@pytest.fixture(scope="module")
def data():
    subjects, events = population(300)
    one = privseg.load_pandas(privseg.Policy.from_json(policy_json()), "crm", ["crm"], subjects, events, now=NOW)
    return dd.from_pandas(subjects, npartitions=3), dd.from_pandas(events, npartitions=2), one


def test_count_and_dp_count_equal_one_engine(data):
    s, e, one = data
    seg = one.compile(DE)
    for shards, partitions in ((1, 1), (7, 2), (13, 3), (40, 4)):
        got = pd_.segment_count(s, e, policy_json(), "crm", ["crm"], DE, shards=shards, partitions=partitions,
                                now=NOW)
        assert got == one.count(seg)
    assert got.value is not None and got.value > 3
    d = privseg.Engine(privseg.Policy.from_json(policy_json()), "crm", ["crm"], now=NOW)
    got = pd_.segment_count(s, e, policy_json(), "crm", ["crm"], DE, dp=True, seed=11, shards=5, now=NOW, driver=d)
    assert got == one.dp_count(seg, seed=11)


def test_members_and_export_equal_one_engine(data):
    s, e, one = data
    seg = one.compile(DE)
    got = pd_.segment_members(s, e, policy_json(), "crm", ["crm"], DE, shards=16, partitions=3, now=NOW)
    want = one.evaluate(seg)
    assert len(want) > 10
    assert sorted(got) == sorted(want)
    for fmt in ("jsonl", "csv"):
        got = pd_.segment_export(s, e, policy_json(), "crm", ["crm"], DE, "mailer", ["country", "total_spend"],
                                 KEY, format=fmt, shards=9, partitions=2, now=NOW)
        want = one.export(seg, "mailer", ["country", "total_spend"], KEY, format=fmt)
        assert sorted(got.splitlines()) == sorted(want.splitlines())


def test_empty_shards_and_the_gate(data):
    s, e, one = data
    # More shards than subjects: most shards hold nobody.
    subjects, events = population(8)
    few = privseg.load_pandas(privseg.Policy.from_json(policy_json()), "crm", ["crm"], subjects, events, now=NOW)
    got = pd_.segment_members(dd.from_pandas(subjects, npartitions=2), dd.from_pandas(events, npartitions=1),
                              policy_json(), "crm", ["crm"], DE, shards=12, partitions=3, now=NOW)
    assert sorted(got) == sorted(few.evaluate(few.compile(DE))) and got
    # An analyst may count but not read ids, in the tasks too.
    loader = ("crm", ["crm"])
    with pytest.raises(errors.AccessDenied):
        pd_.segment_members(s, e, policy_json(), "ana", ["analyst"], DE, shards=4, now=NOW, loader=loader)
    got = pd_.segment_count(s, e, policy_json(), "ana", ["analyst"], DE, shards=4, now=NOW, loader=loader)
    assert got == one.count(one.compile(DE))
    # The export's recipient agreement is checked: geo's covers no spend.
    with pytest.raises(errors.ExportRefused):
        pd_.segment_export(s, e, policy_json(), "crm", ["crm"], DE, "geo", ["country"], KEY, shards=4, now=NOW)
