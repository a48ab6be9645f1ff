//! privseg in one run: a policy, 1,000,000 synthetic customers with consent
//! histories, three segments for three purposes, a withdrawal that takes
//! effect at once, and two refusals.
//!
//! Run with `cargo run --release --example quickstart`.

use std::sync::Arc;
use std::time::Instant;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::import::SubjectRow;
use privseg::policy::*;
use privseg::timestamp::{DAY, parse_date};
use privseg::{Actor, Engine, ManualClock, Timestamp};

const SUBJECTS: u32 = 1_000_000;
const NOTICE_SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

/// A small deterministic generator (SplitMix64), so every run is the same.
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
}

fn policy() -> Policy {
    PolicyBuilder::new("Acme Retail Ltd")
        .contact("dpo@acme.example")
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
        .attribute(AttributeSpec::categorical(
            "condition",
            "user.health",
            &["diabetes", "none"],
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial")
                .allow("user.behaviour")
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
            // A broad grant of `user` still does not reach special categories (R7).
            PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests).allow("user"),
        )
        .role(RoleSpec {
            name: "crm".into(),
            count: vec!["marketing".into(), "analytics".into()],
            member_ids: vec!["marketing".into(), "analytics".into()],
            explain: vec!["marketing".into(), "analytics".into()],
            subjects: true,
            ..RoleSpec::default()
        })
        .build()
        .expect("the example policy is valid")
}

fn main() {
    // The host supplies the clock; this simulation fixes it, so that its
    // consents (valid two years) and its figures do not depend on the day
    // it is run.
    let now = Timestamp::parse("2026-11-23T12:00:00Z").unwrap();
    let policy = Arc::new(policy());
    println!(
        "policy {} (version {})",
        policy.spec().controller.name,
        policy.version()
    );

    // The host authenticates its callers and gives them roles; the policy
    // says what each role may do.
    let crm = Actor::new("quickstart", &["crm"]);
    println!("generating {SUBJECTS} synthetic customers and their consent histories...");
    let t = Instant::now();
    let mut engine = Engine::new(policy).with_clock(Arc::new(ManualClock::new(now)));
    let mut rng = Rng(42);
    let countries = ["FR", "DE", "ES", "IT", "US"];
    let base = parse_date("1950-01-01").unwrap();
    let mut subjects = Vec::with_capacity(SUBJECTS as usize);
    let mut events = Vec::new();
    for i in 0..SUBJECTS {
        let id = format!("c-{i}");
        let c = rng.below(5) as usize;
        let jurisdiction = if c == 4 {
            "US-CA"
        } else {
            ["EU-FR", "EU-DE", "EU-ES", "EU-IT"][c]
        };
        let birth_date =
            (rng.below(20) != 0).then(|| base + time::Duration::days(rng.below(25_000) as i64));
        let verified = now.add_secs(-(rng.below(500) as i64) * DAY);
        let spend = ((rng.below(1000) * rng.below(1000)) / 100).min(100_000) as i64;
        let last_order = now.add_secs(-(rng.below(720) as i64) * DAY);
        // Consent histories: most customers were asked for email consent;
        // some granted, some later withdrew; a few Californians opted out.
        let asked = now.add_secs(-(rng.below(900) as i64) * DAY);
        match rng.below(10) {
            0..=5 => {
                events.push(ConsentEvent::grant(
                    &id,
                    "marketing.email",
                    asked,
                    "v3",
                    NOTICE_SHA,
                ));
                if rng.below(8) == 0 {
                    // Never after now: an event cannot be recorded ahead of time.
                    let later = asked.add_secs(rng.below(60) as i64 * DAY).min(now);
                    events.push(ConsentEvent::new(
                        &id,
                        EventKind::ConsentWithdrawn,
                        Some("marketing.email"),
                        later,
                    ));
                }
            }
            6 | 7 => events.push(ConsentEvent::new(
                &id,
                EventKind::ConsentRefused,
                Some("marketing.email"),
                asked,
            )),
            _ => {}
        }
        if c == 4 && rng.below(5) == 0 {
            let kind = if rng.below(2) == 0 {
                EventKind::Gpc
            } else {
                EventKind::OptOutSaleShare
            };
            events.push(ConsentEvent::new(&id, kind, None, asked));
        }
        subjects.push(SubjectRow {
            id,
            jurisdiction: jurisdiction.into(),
            birth_date,
            values: vec![
                ("country".into(), countries[c].into(), verified),
                ("total_spend".into(), spend.into(), verified),
                ("last_order".into(), last_order.into(), verified),
            ],
        });
    }
    let generated = t.elapsed();
    println!("importing them into the engine (one audited call; checks every event)...");
    let t = Instant::now();
    let summary = engine
        .import(&crm, &subjects, &events)
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "imported {} subjects, {} values and {} consent events in {:.2?} (generated in {:.2?})",
        summary.subjects,
        summary.values,
        summary.events,
        t.elapsed(),
        generated
    );

    let segments = [
        r#"segment "lapsed_vip" for marketing.email where country in ("FR", "DE") and total_spend >= 500 and last_order < now - 90d"#,
        r#"segment "us_retarget" for marketing.advertising.third_party where country = "US" and last_order >= now - 30d"#,
        r#"segment "active_eu" for analytics.product where not country = "US" and last_order between now - 180d and now"#,
    ];
    println!(
        "evaluating three segments, twice each (the first run for a purpose builds its eligibility mask)..."
    );
    for text in segments {
        let seg = engine.compile(&crm, text).unwrap_or_else(|e| panic!("{e}"));
        // The first evaluation for a purpose builds its eligibility mask
        // (every subject through the eligibility rules); later ones reuse
        // it, kept current by each event.
        let t = Instant::now();
        let members = engine.evaluate(&crm, &seg, now).unwrap();
        let first = t.elapsed();
        let t = Instant::now();
        let again = engine.evaluate(&crm, &seg, now).unwrap();
        let cached = t.elapsed();
        assert_eq!(again.count(), members.count());
        let all_ids = engine.member_ids(&crm, &members).unwrap();
        let ids: Vec<&str> = all_ids.iter().take(3).map(String::as_str).collect();
        println!(
            "{:<12} {:<34} {:>7} members in {:>9.2?} (first run, builds the mask), {:>9.2?} after; first: {}",
            members.segment(),
            members.purpose(),
            members.count(),
            first,
            cached,
            ids.join(", ")
        );
    }

    // A withdrawal takes effect at once.
    let seg = engine.compile(&crm, segments[0]).unwrap();
    let members = engine.evaluate(&crm, &seg, now).unwrap();
    let someone = engine.member_ids(&crm, &members).unwrap()[0].clone();
    engine
        .record(
            &crm,
            &ConsentEvent::new(
                &someone,
                EventKind::ConsentWithdrawn,
                Some("marketing.email"),
                now,
            ),
        )
        .unwrap();
    let after = engine.evaluate(&crm, &seg, now).unwrap();
    println!(
        "\n{someone} withdraws consent for marketing.email: lapsed_vip goes from {} to {} members; {} is in it: {}",
        members.count(),
        after.count(),
        someone,
        engine.member_ids(&crm, &after).unwrap().contains(&someone)
    );
    let explained = engine.explain(&crm, &seg, &someone, now).unwrap();
    print!("{explained}");

    // Two refusals: data minimisation (R2) and a special category (R7).
    println!();
    for text in [
        r#"segment "big_spenders" for marketing.advertising.third_party where total_spend > 1000"#,
        r#"segment "diabetics" for analytics.product where condition = "diabetes""#,
    ] {
        match engine.compile(&crm, text) {
            Ok(_) => println!("unexpectedly valid: {text}"),
            Err(e) => println!("{e}\n"),
        }
    }
}
