"""The durable store from Python: create, reopen, append all or nothing,
erase, purge, the lock, wrong keys, and the reports."""

import json
import os

import pytest

import privseg
from privseg import errors

from conftest import NOW, population, policy_json

KEK = bytes(range(100, 132))
AUDIT = bytes(range(1, 33))
DE = 'segment "de" for marketing.email where country = "DE"'


def csv_and_jsonl(n):
    subjects, events = population(n)
    return privseg.subjects_csv(subjects), privseg.events_jsonl(events)


def make(tmp_path, n=60, **kw):
    s, e = csv_and_jsonl(n)
    return privseg.Engine.create(str(tmp_path / "store"), privseg.Policy.from_json(policy_json()),
                                 "crm-sync", ["crm"], KEK, AUDIT, subjects_csv=s, events_jsonl=e,
                                 now=NOW, **kw)


def reopen(tmp_path, **kw):
    return privseg.Engine.open(str(tmp_path / "store"), privseg.Policy.from_json(policy_json()),
                               "crm-sync", ["crm"], kw.pop("kek", KEK), AUDIT, now=NOW, **kw)


def test_a_store_reopens_with_the_same_answers(tmp_path, policy):
    mem_s, mem_e = population(60)
    mem = privseg.load_pandas(policy, "crm-sync", ["crm"], mem_s, mem_e, now=NOW)
    e = make(tmp_path)
    assert e.is_durable and not mem.is_durable
    want = mem.evaluate(mem.compile(DE))
    assert e.evaluate(e.compile(DE)) == want
    e.checkpoint()
    del e
    again = reopen(tmp_path)
    assert again.subject_count == 60
    assert again.evaluate(again.compile(DE)) == want


def test_the_store_is_locked_while_an_engine_holds_it(tmp_path):
    e = make(tmp_path)
    with pytest.raises(errors.StoreError, match="in use"):
        reopen(tmp_path)
    del e
    assert reopen(tmp_path).subject_count == 60


def test_create_refuses_an_existing_store_and_open_a_missing_one(tmp_path):
    e = make(tmp_path)
    del e
    with pytest.raises(errors.StoreError, match="already here"):
        make(tmp_path)
    with pytest.raises(errors.StoreError, match="no store here"):
        privseg.Engine.open(str(tmp_path / "nothing"), privseg.Policy.from_json(policy_json()),
                            "crm-sync", ["crm"], KEK, AUDIT)


def test_a_wrong_or_short_key_is_refused(tmp_path):
    e = make(tmp_path)
    del e
    with pytest.raises(errors.StoreError):
        reopen(tmp_path, kek=bytes(32))
    with pytest.raises(errors.InvalidInput, match="32 bytes"):
        reopen(tmp_path, kek=b"short")


def test_an_append_is_all_or_nothing(tmp_path):
    e = make(tmp_path)
    del e
    good = "id,jurisdiction,birth_date,verified_at,country,total_spend,allergy\n" \
           "n-1,EU-FR,1980-01-01,2026-02-01T00:00:00Z,FR,10,\n"
    bad = good + "n-2,EU-FR,1980-01-01,2026-02-01T00:00:00Z,XX,10,\n"
    with pytest.raises(errors.InputError, match="XX"):
        reopen(tmp_path, subjects_csv=bad)
    assert reopen(tmp_path).subject_count == 60
    assert reopen(tmp_path, subjects_csv=good).subject_count == 61
    assert reopen(tmp_path).subject_count == 61


def test_erase_is_durable_and_needs_the_permission(tmp_path):
    e = make(tmp_path)
    seg = e.compile(DE)
    assert "c-00001" in e.evaluate(seg)
    e.set_actor("analyst-1", ["analyst"])
    with pytest.raises(errors.AccessDenied):
        e.erase("c-00001")
    e.set_actor("crm-sync", ["crm"])
    e.erase("c-00001")
    del e
    again = reopen(tmp_path)
    assert again.subject_count == 59
    assert "c-00001" not in again.evaluate(again.compile(DE))
    with pytest.raises(errors.InvalidInput, match="c-00001"):
        again.erase("c-00001")


def test_purge_removes_values_past_retention(tmp_path):
    e = make(tmp_path)
    assert e.purge() == {"values": 0, "subjects": 0}
    # user.commerce keeps values 730 days from verification (2026-02-01).
    e.set_now("2028-03-01T00:00:00Z")
    got = e.purge()
    with_spend = sum(1 for i in range(60) if i % 5 != 0)
    assert got == {"values": with_spend, "subjects": with_spend}


def test_reports_need_read_audit_and_read_the_stores_log(tmp_path):
    e = make(tmp_path)
    with pytest.raises(errors.AccessDenied):
        e.ropa()
    e.set_actor("dpo-1", ["dpo"])
    ropa = json.loads(e.ropa())
    assert ropa["security"]["audit_log"]["entries"] > 0
    assert "#" in e.ropa(format="md")
    report = json.loads(e.compliance_report(within_days=400))
    assert isinstance(report, dict) and report
    with pytest.raises(errors.InvalidInput, match="format"):
        e.ropa(format="pdf")
    del e
    # The audit log is kept with the store and grows across engines.
    assert os.path.getsize(tmp_path / "store" / "audit.log") > 0
    again = reopen(tmp_path)
    again.set_actor("dpo-1", ["dpo"])
    assert json.loads(again.ropa())["security"]["audit_log"]["entries"] > ropa["security"]["audit_log"]["entries"]


def test_parquet_loads_like_pandas(tmp_path, policy):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    subjects, events = population(60)
    pq.write_table(pa.Table.from_pandas(subjects), tmp_path / "s.parquet")
    pq.write_table(pa.Table.from_pandas(events), tmp_path / "e.parquet")
    a = privseg.load_parquet(policy, "crm-sync", ["crm"], str(tmp_path / "s.parquet"),
                             str(tmp_path / "e.parquet"), now=NOW)
    b = privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
    assert a.evaluate(a.compile(DE)) == b.evaluate(b.compile(DE))
