"""The Python bindings: every call and every error path, and no crash on
bad input."""

import json

import pytest

import privseg
from privseg import errors

from conftest import KEY, NOW, SHA, policy_json, population

SEG = 'segment "fr" for marketing.email where country = "FR"'


def expected_de(n):
    """DE subjects (i % 3 == 1) consented; those with i % 7 == 0 withdrew;
    those with i % 11 == 0 have no birth date, so may be minors below the
    age of consent and are left out (R9)."""
    return [f"c-{i:05d}" for i in range(n) if i % 3 == 1 and i % 7 != 0 and i % 11 != 0]


DE = 'segment "de" for marketing.email where country = "DE"'


def test_policy_reads_and_reports_its_version(policy):
    assert len(policy.version) == 64
    assert policy.k_threshold == 3
    assert "Policy(" in repr(policy)


def test_members_count_and_explain(engine):
    seg = engine.compile(DE)
    assert seg.name == "de" and seg.purpose == "marketing.email"
    ids = engine.evaluate(seg)
    assert ids == expected_de(60)
    c = engine.count(seg)
    assert c.value == len(ids) and c.fewer_than is None
    x = engine.explain(seg, "c-00007")
    assert x["member"] is False  # withdrew on 2026-02-10
    assert "OUT" in x["text"]
    x = engine.explain(seg, "c-00001")
    assert x["member"] is True and x["predicate_held"] is True


def test_small_counts_are_thresholded(policy):
    subjects, events = population(5)
    e = privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
    c = e.count(e.compile(DE))
    assert c.value is None and c.fewer_than == 3


def test_export_pseudonymises_and_keeps_to_the_agreement(engine):
    seg = engine.compile(DE)
    out = engine.export(seg, "mailer", ["country", "total_spend"], KEY)
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(expected_de(60))
    assert all(r["id"].startswith("v1:") for r in rows)
    assert not any("c-0" in line for line in out.splitlines())
    csv = engine.export(seg, "mailer", ["country"], KEY, format="csv")
    assert csv.splitlines()[0] == "id,country"
    with pytest.raises(errors.ExportRefused) as e:
        engine.export(seg, "geo", ["total_spend"], KEY)
    assert e.value.rule == "R19"


def test_dp_count_is_noisy_charged_and_capped(engine):
    seg = engine.compile(DE)
    a = engine.dp_count(seg, seed=1)
    assert isinstance(a, int)
    with pytest.raises(errors.PrivacyError):
        engine.dp_count(seg, epsilon="1", seed=1)  # above the cap
    engine.dp_count(seg, seed=2)
    engine.dp_count(seg, seed=3)
    engine.dp_count(seg, seed=4)  # four queries of 1/2 spend the total of 2
    with pytest.raises(errors.PrivacyError):
        engine.dp_count(seg, seed=5)


def test_records_and_sets_values(policy):
    e = privseg.Engine(policy, "crm-sync", ["crm"], now=NOW)
    for i in range(4):
        e.add_subject(f"s{i}", "EU-FR", "1980-01-01")
        e.set_attribute(f"s{i}", "country", "DE", "2026-02-01T00:00:00Z")
        e.set_attribute(f"s{i}", "total_spend", 12, "2026-02-01T00:00:00Z")
        e.record({"subject": f"s{i}", "kind": "consent_granted", "purpose": "marketing.email",
                  "at": "2026-02-01T00:00:00Z", "notice_version": "v3", "notice_sha256": SHA,
                  "channel": "web", "collector": "test"})
    seg = e.compile(DE)
    assert e.evaluate(seg) == ["s0", "s1", "s2", "s3"]
    e.record_json(json.dumps({"subject": "s0", "kind": "consent_withdrawn", "purpose": "marketing.email",
                              "at": "2026-02-02T00:00:00Z", "channel": "web", "collector": "test"}))
    assert e.evaluate(seg) == ["s1", "s2", "s3"]
    assert e.subject_count == 4 and e.audit_len > 10


def test_the_host_clock_decides_eligibility(policy):
    e = privseg.Engine(policy, "crm-sync", ["crm"], now="2026-02-01T00:00:00Z")
    e.add_subject("s", "EU-FR")
    e.set_attribute("s", "country", "DE", "2026-02-01T00:00:00Z")
    e.record({"subject": "s", "kind": "consent_granted", "purpose": "marketing.email",
              "at": "2026-02-01T00:00:00Z", "notice_version": "v3", "notice_sha256": SHA,
              "channel": "web", "collector": "t"})
    e.set_now("2026-02-05T00:00:00Z")
    e.record({"subject": "s", "kind": "consent_withdrawn", "purpose": "marketing.email",
              "at": "2026-02-04T00:00:00Z", "channel": "web", "collector": "t"})
    seg = e.compile(DE)
    # A past reference time does not bring back who withdrew since.
    assert e.evaluate(seg, reference="2026-02-02T00:00:00Z") == []
    sys_engine = privseg.Engine(policy, "crm-sync", ["crm"])
    with pytest.raises(errors.InvalidInput):
        sys_engine.set_now(NOW)


def test_arrow_loads_like_pandas(policy):
    pa = pytest.importorskip("pyarrow")
    subjects, events = population(30)
    a = privseg.load_arrow(policy, "crm-sync", ["crm"], pa.Table.from_pandas(subjects),
                           pa.Table.from_pandas(events), now=NOW)
    b = privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
    assert a.evaluate(a.compile(DE)) == b.evaluate(b.compile(DE))


# ---- error paths -------------------------------------------------------


def test_refused_segments_carry_the_rule(engine):
    with pytest.raises(errors.SegmentRefused) as e:
        engine.compile('segment "h" for marketing.email where allergy = true')
    assert e.value.rule is not None and e.value.rule.startswith("R")
    with pytest.raises(errors.SegmentRefused):
        engine.compile("segment oops")
    with pytest.raises(errors.SegmentRefused):
        engine.compile('segment "x" for nothing.known')


def test_access_is_denied_without_the_role(policy):
    subjects, events = population(20)
    e = privseg.load_pandas(policy, "ana", ["analyst", "crm"], subjects, events, now=NOW)
    analyst = privseg.Engine(policy, "ana", ["analyst"], now=NOW)
    with pytest.raises(errors.AccessDenied):
        analyst.add_subject("x", "EU-FR")
    seg = analyst.compile(DE)
    assert analyst.count(seg).fewer_than == 3  # empty engine, count allowed
    with pytest.raises(errors.AccessDenied):
        analyst.evaluate(seg)
    with pytest.raises(errors.AccessDenied):
        analyst.export(seg, "mailer", ["country"], KEY)
    with pytest.raises(errors.AccessDenied):
        analyst.explain(seg, "x")
    with pytest.raises(errors.AccessDenied):
        privseg.Engine.load(policy, "ana", ["analyst"], subjects_csv=privseg.subjects_csv(subjects), now=NOW)
    assert isinstance(e, privseg.Engine)


def test_bad_input_raises_and_never_crashes(policy, engine):
    seg = engine.compile(DE)
    cases = [
        (errors.InvalidInput, lambda: engine.evaluate(seg, reference="yesterday")),
        (errors.InvalidInput, lambda: privseg.Engine(policy, "crm", ["crm"], now="not a time")),
        (errors.InvalidInput, lambda: privseg.Engine(policy, "  ", ["crm"])),
        (errors.InvalidInput, lambda: engine.export(seg, "mailer", ["country"], KEY, format="xml")),
        (errors.InvalidInput, lambda: engine.export(seg, "mailer", ["country"], b"short")),
        (errors.InvalidInput, lambda: engine.export(seg, "nobody", ["country"], KEY)),  # unknown recipient: an input error
        (errors.InvalidInput, lambda: engine.explain(seg, "no-such-id")),
        (errors.InvalidInput, lambda: engine.dp_count(seg, epsilon="a lot")),
        (errors.InvalidInput, lambda: engine.add_subject("c-00001", "EU-FR")),
        (errors.InvalidInput, lambda: engine.add_subject("", "EU-FR")),
        (errors.InvalidInput, lambda: engine.add_subject("z", "MARS")),
        (errors.InvalidInput, lambda: engine.add_subject("z", "EU-FR", "31/12/1990")),
        (errors.InvalidInput, lambda: engine.set_attribute("c-00001", "country", "XX", NOW)),
        (errors.InvalidInput, lambda: engine.set_attribute("c-00001", "nope", 1, NOW)),
        (errors.InvalidInput, lambda: engine.set_attribute("c-00001", "country", 1.5, NOW)),
        (errors.InvalidInput, lambda: engine.record({"subject": "c-00001"})),
        (errors.InvalidInput, lambda: engine.record({"x": object()})),
        (errors.InvalidInput, lambda: engine.record_json("{not json")),
        (errors.InvalidInput, lambda: engine.partial(seg, 0, 2, kind="everything")),
        (errors.InvalidInput, lambda: engine.partial(seg, 0, 2, kind="count", recipient="mailer")),
        (errors.InvalidInput, lambda: privseg.shard_of("a", 0)),
        (errors.EventRefused, lambda: engine.record({
            "subject": "c-00001", "kind": "consent_granted", "purpose": "marketing.email",
            "at": "2026-03-01T12:00:00Z", "notice_version": "v3", "notice_sha256": "nothex",
            "channel": "web", "collector": "t"})),
        (errors.PolicyInvalid, lambda: privseg.Policy.from_json("{}")),
        (errors.PolicyInvalid, lambda: privseg.Policy.from_json("not json")),
        (errors.InputError, lambda: privseg.Policy.from_file("/nonexistent/policy.json")),
        (errors.InputError, lambda: privseg.Engine.load(policy, "crm", ["crm"], subjects_csv="")),
        (errors.InputError, lambda: privseg.Engine.load(policy, "crm", ["crm"], subjects_csv="id,x\n1,2\n")),
        (errors.InputError, lambda: privseg.Engine.load(policy, "crm", ["crm"], events_jsonl="{bad\n")),
        (errors.PartialsRefused, lambda: engine.release_count(seg, [])),
        (errors.PartialsRefused, lambda: engine.release_count(seg, ["{}"])),
        (errors.PartialsRefused, lambda: engine.partial(seg, 0, 2)),  # holds other shards' subjects
        (errors.PartialsRefused, lambda: engine.partial(seg, 3, 2)),
    ]
    for i, (exc, call) in enumerate(cases):
        with pytest.raises(exc) as e:
            call()
        assert isinstance(e.value, errors.PrivsegError), i
        assert str(e.value), i
    # A load refused on line 2 names the line and changes nothing.
    with pytest.raises(errors.InputError) as e:
        privseg.Engine.load(policy, "crm", ["crm"], subjects_csv=
            "id,jurisdiction,birth_date,verified_at,country,total_spend,allergy\n"
            "a,EU-FR,,2026-01-01T00:00:00Z,XX,,\n")
    assert "line 2" in str(e.value) or ":2" in str(e.value)
    # Wrong argument types are TypeErrors, not crashes.
    with pytest.raises(TypeError):
        engine.evaluate("not a segment")
    with pytest.raises(TypeError):
        engine.export(seg, "mailer", "country", KEY)  # a str is not a list of fields
    with pytest.raises(OverflowError):
        engine.partial(seg, -1, 2)


def test_future_events_carry_rule_r5(policy):
    e = privseg.Engine(policy, "crm", ["crm"], now="2026-01-01T00:00:00Z")
    e.add_subject("s", "EU-FR")
    with pytest.raises(errors.EventRefused) as x:
        e.record({"subject": "s", "kind": "consent_withdrawn", "purpose": "marketing.email",
                  "at": "2027-01-01T00:00:00Z", "channel": "web", "collector": "t"})
    assert x.value.rule == "R5"
    assert "[R5]" in str(x.value)


def test_shard_of_matches_the_documented_hash():
    import hashlib

    for id_ in ["c-1", "é-ü", "x" * 100]:
        for n in (1, 2, 7, 64):
            h = int.from_bytes(hashlib.sha256(id_.encode()).digest()[:8], "big")
            assert privseg.shard_of(id_, n) == h % n


def test_local_shards_release_what_one_engine_answers(policy):
    subjects, events = population(80)
    one = privseg.load_pandas(policy, "crm", ["crm"], subjects, events, now=NOW)
    n = 4
    shard = subjects["id"].map(lambda i: privseg.shard_of(i, n))
    engines = []
    for s in range(n):
        sub = subjects[shard == s]
        ev = events[events["subject"].isin(sub["id"])]
        engines.append(privseg.load_pandas(policy, "crm", ["crm"], sub, ev, now=NOW))
    driver = privseg.Engine(policy, "crm", ["crm"], now=NOW)
    seg = driver.compile(DE)
    parts = [e.partial(e.compile(DE), s, n) for s, e in enumerate(engines)]
    assert driver.release_count(seg, parts) == one.count(one.compile(DE))
    assert driver.release_dp_count(seg, parts, seed=5) == one.dp_count(one.compile(DE), seed=5)
    parts = [e.partial(e.compile(DE), s, n, kind="members") for s, e in enumerate(engines)]
    assert sorted(driver.release_members(seg, parts)) == sorted(one.evaluate(one.compile(DE)))
    parts = [e.partial(e.compile(DE), s, n, kind="export", recipient="mailer", fields=["country"])
             for s, e in enumerate(engines)]
    a = driver.release_export(seg, parts, "mailer", ["country"], KEY)
    b = one.export(one.compile(DE), "mailer", ["country"], KEY)
    assert sorted(a.splitlines()) == sorted(b.splitlines())
    with pytest.raises(errors.PartialsRefused):
        driver.release_members(seg, parts[:3])


def test_split_members_release_a_shard_at_a_time(policy):
    subjects, events = population(60)
    one = privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
    want = sorted(one.evaluate(one.compile(DE)))
    n = 3
    shards = []
    for k in range(n):
        keep = subjects["id"].map(lambda i: privseg.shard_of(i, n) == k)
        ev = events[events["subject"].map(lambda i: privseg.shard_of(i, n) == k)]
        shards.append(privseg.load_pandas(policy, "crm-sync", ["crm"], subjects[keep], ev, now=NOW))
    parts = [privseg.split_partial(e.partial(e.compile(DE), k, n, kind="members")) for k, e in enumerate(shards)]
    driver = privseg.Engine(policy, "crm-sync", ["crm"], now=NOW)
    seg = driver.compile(DE)
    with pytest.raises(errors.PartialsRefused, match="release_members_split"):
        driver.release_members(seg, [h for h, _ in parts])
    before = driver.audit_len
    rel = driver.release_members_split(seg, [h for h, _ in parts])
    assert driver.audit_len == before + 1 and rel.total == len(want)
    with pytest.raises(errors.PartialsRefused, match="not the ids"):
        rel.ids(0, parts[0][1][:-1])
    got = []
    for k, (_, ids) in enumerate(parts):
        got += rel.ids(k, ids)
    assert sorted(got) == want and rel.pending == []
    with pytest.raises(errors.PartialsRefused, match="already released"):
        rel.ids(0, parts[0][1])


def test_split_export_release_a_shard_at_a_time(policy):
    import json

    subjects, events = population(60)
    one = privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
    fields = ["country", "total_spend"]
    n = 3
    shards = []
    for k in range(n):
        keep = subjects["id"].map(lambda i: privseg.shard_of(i, n) == k)
        ev = events[events["subject"].map(lambda i: privseg.shard_of(i, n) == k)]
        shards.append(privseg.load_pandas(policy, "crm-sync", ["crm"], subjects[keep], ev, now=NOW))
    parts = [privseg.split_export_partial(e.partial(e.compile(DE), k, n, kind="export", recipient="mailer",
                                                    fields=fields))
             for k, e in enumerate(shards)]
    headers = [h for h, _ in parts]
    driver = privseg.Engine(policy, "crm-sync", ["crm"], now=NOW)
    seg = driver.compile(DE)
    with pytest.raises(errors.PartialsRefused, match="release_export_split"):
        driver.release_export(seg, headers, "mailer", fields, KEY)
    # The gate, before anything: the permission, the recipient's agreement
    # (geo's covers locations, not spend).
    analyst = privseg.Engine(policy, "ana", ["analyst"], now=NOW)
    with pytest.raises(errors.AccessDenied):
        analyst.release_export_split(analyst.compile(DE), headers, "mailer", fields, KEY)
    with pytest.raises(errors.ExportRefused, match="does not cover field total_spend"):
        driver.release_export_split(seg, headers, "geo", ["total_spend"], KEY)
    for fmt in ("jsonl", "csv"):
        want = one.export(one.compile(DE), "mailer", fields, KEY, format=fmt)
        before = driver.audit_len
        rel = driver.release_export_split(seg, headers, "mailer", fields, KEY, format=fmt)
        # Recorded once, before any row.
        assert driver.audit_len == before + 1
        assert rel.total == len(want.splitlines()) - (fmt == "csv") and rel.pending == [0, 1, 2]
        # A changed value is refused (the header's SHA-256 covers the rows).
        k = max(range(n), key=lambda k: len(json.loads(parts[k][1])["ids"]))
        bad = json.loads(parts[k][1])
        bad["values"][0][0] = "ES" if bad["values"][0][0] != "ES" else "FR"
        with pytest.raises(errors.PartialsRefused, match="not the rows"):
            rel.rows(k, json.dumps(bad))
        got = "".join(rel.rows(k, r) for k, (_, r) in reversed(list(enumerate(parts))))
        assert sorted(got.splitlines()) == sorted(want.splitlines())
        assert rel.pending == []
        with pytest.raises(errors.PartialsRefused, match="already released"):
            rel.rows(0, parts[0][1])
