//! Writes a deterministic sample data set in the `privseg` file formats: a
//! policy (`policy.json`), subjects (`subjects.csv`, 8 columns) and their
//! consent events (`consents.jsonl`, about 1.5 per subject, in no particular
//! time order); and, for fairness audits, the same policy with a protected
//! attribute `age_band` (`policy-fairness.json`) and the same subjects with
//! that column (`subjects-fairness.csv`).
//!
//! ```text
//! cargo run --release --example gen_data -- --subjects 300 --out examples/data
//! cargo run --release --example gen_data -- --subjects 1000000 --out target/big
//! ```
//!
//! Options: `--subjects N` (default 300), `--out DIR` (default
//! `examples/data`), `--seed S` (default 42). The same options always write
//! the same files. Times are spread over the years before
//! 2026-11-23T12:00:00Z, the reference time of the walk-through.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use privseg::Timestamp;
use privseg::consent::{ConsentEvent, EventKind, parental_gate};
use privseg::policy::*;
use privseg::timestamp::{DAY, age_on, format_date, parse_date};

const NOTICE_SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
const ADS_SHA: &str = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn jurisdiction(code: &str, regime: Regime, age: Option<u8>) -> JurisdictionSpec {
    JurisdictionSpec {
        code: code.into(),
        regime,
        digital_consent_age: age,
    }
}

fn base_policy() -> PolicyBuilder {
    PolicyBuilder::new("Acme Retail Ltd")
        .contact("dpo@acme.example")
        .jurisdictions(vec![
            jurisdiction("EU", Regime::Gdpr, Some(16)),
            jurisdiction("EU-DE", Regime::Gdpr, Some(16)),
            jurisdiction("EU-ES", Regime::Gdpr, Some(14)),
            jurisdiction("EU-FR", Regime::Gdpr, Some(15)),
            jurisdiction("EU-IT", Regime::Gdpr, Some(14)),
            jurisdiction("US-CA", Regime::Ccpa, None),
        ])
        .category(CategorySpec::new("user.contact").retention_days(730))
        .category(CategorySpec::new("user.location").retention_days(730))
        .category(CategorySpec::new("user.financial.transactions").retention_days(3650))
        .category(CategorySpec::new("user.behaviour").retention_days(365))
        .category(CategorySpec::new("user.health").special().ccpa_sensitive())
        .attribute(AttributeSpec::categorical(
            "country",
            "user.location",
            &["FR", "DE", "ES", "IT", "US"],
        ))
        .attribute(AttributeSpec::integer(
            "total_spend",
            "user.financial.transactions",
            0,
            100_000,
        ))
        .attribute(AttributeSpec::timestamp("last_order", "user.behaviour").max_staleness_days(400))
        .attribute(AttributeSpec::boolean("newsletter", "user.contact"))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial")
                .allow("user.behaviour")
                .allow("user.contact")
                .notice_versions(&["v3"])
                .consent_validity_days(730)
                .email(false),
        )
        .purpose(
            PurposeSpec::new("marketing.advertising.third_party", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.behaviour")
                .notice_versions(&["ads1"])
                .sale_share(),
        )
        .purpose(
            PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests).allow("user"),
        )
        .recipient(RecipientSpec {
            id: "adnet".into(),
            name: "AdNet Inc.".into(),
            country: "US".into(),
            third_country: true,
            dpa_reference: "DSA-2026-014".into(),
            purposes: vec!["marketing.advertising.third_party".into()],
            categories: vec!["user.location".into(), "user.behaviour".into()],
            ccpa_role: CcpaRole::ThirdParty,
        })
        .recipient(RecipientSpec {
            id: "mailer".into(),
            name: "MailCo SAS".into(),
            country: "FR".into(),
            third_country: false,
            dpa_reference: "DPA-2025-031".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec![
                "user.contact".into(),
                "user.location".into(),
                "user.financial".into(),
                "user.behaviour".into(),
            ],
            ccpa_role: CcpaRole::ServiceProvider,
        })
        .role(RoleSpec {
            name: "admin".into(),
            count: vec!["analytics".into(), "marketing".into()],
            member_ids: vec!["analytics".into(), "marketing".into()],
            explain: vec!["analytics".into(), "marketing".into()],
            export: vec!["adnet".into(), "mailer".into()],
            subjects: true,
            read_audit: true,
            administer: true,
        })
        .role(RoleSpec {
            // Loading the subject and consent files adds subjects.
            name: "loader".into(),
            subjects: true,
            ..RoleSpec::default()
        })
        .role(RoleSpec {
            name: "marketer".into(),
            count: vec!["marketing".into()],
            member_ids: vec!["marketing".into()],
            explain: vec!["marketing".into()],
            ..RoleSpec::default()
        })
        .role(RoleSpec {
            name: "analyst".into(),
            count: vec!["analytics".into(), "marketing".into()],
            ..RoleSpec::default()
        })
        // Differential privacy budgets per purpose (see docs/cli.md).
        .dp_budget("analytics", epsilon("1/2"), epsilon("2"))
        .dp_budget("marketing", epsilon("1/2"), epsilon("1"))
        // The identities of the walk-through, for the user "your-login":
        // replace it with your own login (docs/cli.md).
        .actor(actor("alice", &["admin"]))
        .actor(actor("ann", &["loader", "marketer"]))
        .actor(actor("bob", &["analyst", "loader"]))
}

fn epsilon(s: &str) -> privseg::privacy::dp::Epsilon {
    s.parse().expect("valid epsilon")
}

fn actor(id: &str, roles: &[&str]) -> ActorSpec {
    ActorSpec {
        os_user: "your-login".into(),
        id: Some(id.into()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// The sample policy and, for fairness audits, the same policy with a
/// protected characteristic: `age_band` in the protected category
/// `user.demographics` (never usable in a segment, R20; the groups of
/// `privseg report fairness`).
fn policies() -> (Policy, Policy) {
    let plain = base_policy().build().expect("the sample policy is valid");
    let fairness = base_policy()
        .category(CategorySpec::new("user.demographics").protected())
        .attribute(AttributeSpec::categorical(
            "age_band",
            "user.demographics",
            &AGE_BANDS,
        ))
        .build()
        .expect("the fairness sample policy is valid");
    (plain, fairness)
}

const AGE_BANDS: [&str; 3] = ["under_30", "30_to_49", "50_and_over"];

/// The age band at `now` of a `YYYY-MM-DD` birth date (empty when unknown).
fn age_band(birth: &str, now: Timestamp) -> &'static str {
    let Ok(date) = parse_date(birth) else {
        return "";
    };
    match age_on(date, now.date()) {
        0..30 => AGE_BANDS[0],
        30..50 => AGE_BANDS[1],
        _ => AGE_BANDS[2],
    }
}

struct Args {
    subjects: u64,
    out: PathBuf,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        subjects: 300,
        out: PathBuf::from("examples/data"),
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--subjects" => {
                a.subjects = value()?.parse().map_err(|e| format!("--subjects: {e}"))?
            }
            "--out" => a.out = PathBuf::from(value()?),
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "-h" | "--help" => {
                return Err("usage: gen_data [--subjects N] [--out DIR] [--seed S]\n\
                     writes DIR/policy.json, DIR/subjects.csv and DIR/consents.jsonl"
                    .into());
            }
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args = args()?;
    fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let create = |name: &str| {
        let path = args.out.join(name);
        File::create(&path)
            .map(|f| BufWriter::with_capacity(1 << 20, f))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let io = |e: std::io::Error| e.to_string();

    let (policy, fairness) = policies();
    for (name, p) in [
        ("policy.json", &policy),
        ("policy-fairness.json", &fairness),
    ] {
        let mut w = create(name)?;
        serde_json::to_writer_pretty(&mut w, p.spec()).map_err(|e| e.to_string())?;
        writeln!(w).map_err(io)?;
        w.flush().map_err(io)?;
    }

    let now = Timestamp::parse("2026-11-23T12:00:00Z").expect("valid time");
    let mut rng = Rng(args.seed);
    let mut subjects = create("subjects.csv")?;
    // The same rows with the protected age band, for fairness audits.
    let mut subjects_fairness = create("subjects-fairness.csv")?;
    writeln!(
        subjects_fairness,
        "id,jurisdiction,birth_date,verified_at,country,total_spend,last_order,newsletter,age_band"
    )
    .map_err(io)?;
    let mut events = create("consents.jsonl")?;
    writeln!(
        subjects,
        "id,jurisdiction,birth_date,verified_at,country,total_spend,last_order,newsletter"
    )
    .map_err(io)?;
    let countries = ["FR", "DE", "ES", "IT", "US"];
    let jurisdictions = ["EU-FR", "EU-DE", "EU-ES", "EU-IT", "US-CA"];
    let adults_from = parse_date("1945-01-01").expect("valid date");
    let minors_from = parse_date("2009-01-01").expect("valid date");
    let mut batch: Vec<ConsentEvent> = Vec::new();
    let mut n_events = 0u64;
    for i in 0..args.subjects {
        let id = format!("c-{i:06}");
        let c = rng.below(5) as usize;
        let birth = match rng.below(100) {
            0..=4 => String::new(),
            5..=9 => format_date(minors_from + time::Duration::days(rng.below(3000) as i64)),
            _ => format_date(adults_from + time::Duration::days(rng.below(22_000) as i64)),
        };
        let ago = |rng: &mut Rng, days: u64| now.add_secs(-(rng.below(days) as i64) * DAY);
        if rng.chance(3) {
            // Nothing known yet but the jurisdiction.
            writeln!(subjects, "{id},{},{birth},,,,,", jurisdictions[c]).map_err(io)?;
            writeln!(subjects_fairness, "{id},{},{birth},,,,,,", jurisdictions[c]).map_err(io)?;
        } else {
            let verified = ago(&mut rng, 500);
            let spend = if rng.chance(5) {
                String::new()
            } else {
                ((rng.below(1000) * rng.below(1000)) / 100)
                    .min(100_000)
                    .to_string()
            };
            let last_order = ago(&mut rng, 720);
            let newsletter = ["true", "false", ""][rng.below(3) as usize];
            let row = format!(
                "{id},{},{birth},{verified},{},{spend},{last_order},{newsletter}",
                jurisdictions[c], countries[c]
            );
            writeln!(subjects, "{row}").map_err(io)?;
            writeln!(subjects_fairness, "{row},{}", age_band(&birth, now)).map_err(io)?;
        }

        // Consent histories.
        let asked = ago(&mut rng, 900);
        let ev = |kind: EventKind, purpose: Option<&str>, at: Timestamp| {
            let mut e = ConsentEvent::new(&id, kind, purpose, at);
            e.channel = ["web", "app", "phone"][(at.unix() % 3) as usize].into();
            e.collector = "crm-export".into();
            e
        };
        match rng.below(100) {
            0..=64 => {
                let mut e = ev(EventKind::ConsentGranted, Some("marketing.email"), asked);
                // A few consented to a notice version the policy no longer accepts.
                let version = if rng.chance(8) { "v2" } else { "v3" };
                e.notice_version = Some(version.into());
                e.notice_sha256 = Some(NOTICE_SHA.into());
                batch.push(e);
                if rng.chance(12) {
                    // Never after the reference time: events cannot be
                    // recorded ahead of time.
                    let later = asked.add_secs(rng.below(60) as i64 * DAY + 1).min(now);
                    batch.push(ev(
                        EventKind::ConsentWithdrawn,
                        Some("marketing.email"),
                        later,
                    ));
                }
            }
            65..=84 => batch.push(ev(
                EventKind::ConsentRefused,
                Some("marketing.email"),
                asked,
            )),
            _ => {}
        }
        if rng.chance(35) {
            let mut e = ev(
                EventKind::ConsentGranted,
                Some("marketing.advertising.third_party"),
                ago(&mut rng, 400),
            );
            e.notice_version = Some("ads1".into());
            e.notice_sha256 = Some(ADS_SHA.into());
            batch.push(e);
        }
        if c == 4 {
            match rng.below(100) {
                0..=9 => batch.push(ev(EventKind::Gpc, None, ago(&mut rng, 300))),
                10..=19 => batch.push(ev(EventKind::OptOutSaleShare, None, ago(&mut rng, 300))),
                20..=24 => batch.push(ev(EventKind::LimitSensitive, None, ago(&mut rng, 300))),
                25..=29 => batch.push(ev(EventKind::OptInSaleShare, None, ago(&mut rng, 300))),
                _ => {}
            }
        }
        match rng.below(100) {
            0..=2 => batch.push(ev(EventKind::Objection, None, ago(&mut rng, 300))),
            3..=5 => batch.push(ev(
                EventKind::Unsubscribe,
                Some("marketing.email"),
                ago(&mut rng, 300),
            )),
            6..=7 => {
                let at = ago(&mut rng, 300);
                batch.push(ev(EventKind::Restriction, None, at));
                // Lifted 30 days on, unless that is after the reference
                // time: events cannot be recorded ahead of time.
                let lifted = at.add_secs(30 * DAY);
                if rng.chance(50) && lifted <= now {
                    batch.push(ev(EventKind::RestrictionLifted, None, lifted));
                }
            }
            _ => {}
        }
        if birth.starts_with("20") && rng.chance(30) {
            let at = ago(&mut rng, 300);
            // Only for a subject below the jurisdiction's age gate then: any
            // other parental consent is refused at recording (R9, R12).
            let j = policy.jurisdiction_id(jurisdictions[c]).expect("listed");
            let age = age_on(parse_date(&birth).expect("valid date"), at.date());
            if parental_gate(&policy, j).is_some_and(|gate| age < gate) {
                let mut e = ev(EventKind::ParentalConsent, Some("marketing.email"), at);
                e.notice_version = Some("v3".into());
                e.notice_sha256 = Some(NOTICE_SHA.into());
                batch.push(e);
            }
        }
        // Written in the order they were drawn, which is not time order.
        for e in batch.drain(..) {
            serde_json::to_writer(&mut events, &e).map_err(|e| e.to_string())?;
            writeln!(events).map_err(io)?;
            n_events += 1;
        }
    }
    subjects.flush().map_err(io)?;
    subjects_fairness.flush().map_err(io)?;
    events.flush().map_err(io)?;
    eprintln!(
        "wrote {} subjects and {n_events} events to {}",
        args.subjects,
        args.out.display()
    );
    Ok(())
}
