import json
import pathlib

import pytest

import privseg

NOW = "2026-03-01T12:00:00Z"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
KEY = bytes(range(32))

POLICY = {
    "controller": {"name": "Acme Ltd", "contact": "dpo@acme.example"},
    "k_threshold": 3,
    "categories": [
        {"key": "user.location"},
        {"key": "user.commerce", "retention_days": 730},
        {"key": "user.health", "special": True},
    ],
    "attributes": [
        {"name": "country", "type": "categorical", "values": ["FR", "DE", "ES"], "category": "user.location"},
        {"name": "total_spend", "type": "integer", "min": 0, "max": 1000000, "category": "user.commerce"},
        {"name": "allergy", "type": "boolean", "category": "user.health"},
    ],
    "purposes": [
        {
            "key": "marketing.email",
            "basis": "consent",
            "categories": ["user.location", "user.commerce"],
            "accepted_notice_versions": ["v3"],
            "email_channel": True,
        }
    ],
    "recipients": [
        {
            "id": "mailer",
            "name": "Mailer SAS",
            "country": "FR",
            "dpa_reference": "DPA-2026-014",
            "purposes": ["marketing.email"],
            "categories": ["user.location", "user.commerce"],
            "ccpa_role": "service_provider",
        },
        {
            "id": "geo",
            "name": "Geo Ltd",
            "country": "FR",
            "dpa_reference": "DPA-2026-015",
            "purposes": ["marketing.email"],
            "categories": ["user.location"],
            "ccpa_role": "service_provider",
        },
    ],
    "roles": [
        {
            "name": "crm",
            "count": ["marketing"],
            "member_ids": ["marketing"],
            "explain": ["marketing"],
            "export": ["mailer", "geo"],
            "subjects": True,
        },
        {"name": "analyst", "count": ["marketing"]},
        {"name": "dpo", "read_audit": True, "subjects": True},
    ],
    "dp_budgets": [{"purpose": "marketing", "max_epsilon": "1/2", "total": "2"}],
}


def policy_json() -> str:
    return json.dumps(POLICY)


def population(n: int):
    """Subjects and consent events as pandas DataFrames: every third subject
    has no consent, every seventh withdrew, some values are missing."""
    import pandas as pd

    countries = ["FR", "DE", "ES"]
    subjects = pd.DataFrame(
        {
            "id": [f"c-{i:05d}" for i in range(n)],
            "jurisdiction": ["EU-FR" if i % 2 else "EU-DE" for i in range(n)],
            "birth_date": [None if i % 11 == 0 else "1980-05-01" for i in range(n)],
            "verified_at": ["2026-02-01T00:00:00Z"] * n,
            "country": [countries[i % 3] for i in range(n)],
            "total_spend": [None if i % 5 == 0 else float((i * 10) % 1000000) for i in range(n)],
            "allergy": [None] * n,
        }
    )
    rows = []
    for i in range(n):
        if i % 3 == 0:
            continue
        rows.append(
            {
                "subject": f"c-{i:05d}",
                "kind": "consent_granted",
                "purpose": "marketing.email",
                "at": "2026-02-01T00:00:00Z",
                "notice_version": "v3",
                "notice_sha256": SHA,
                "channel": "web",
                "collector": "signup",
            }
        )
        if i % 7 == 0:
            rows.append(
                {
                    "subject": f"c-{i:05d}",
                    "kind": "consent_withdrawn",
                    "purpose": "marketing.email",
                    "at": "2026-02-10T00:00:00Z",
                    "notice_version": None,
                    "notice_sha256": None,
                    "channel": "web",
                    "collector": "prefs",
                }
            )
    events = pd.DataFrame(rows)
    return subjects, events


@pytest.fixture()
def policy():
    return privseg.Policy.from_json(policy_json())


@pytest.fixture()
def engine(policy):
    subjects, events = population(60)
    return privseg.load_pandas(policy, "crm-sync", ["crm"], subjects, events, now=NOW)
