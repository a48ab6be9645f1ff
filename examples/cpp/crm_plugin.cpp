// The CRM plugin of examples/c, written against the C++ wrapper
// include/privseg.hpp: RAII handles and exceptions instead of status codes.
//
// Build (from the repository root):
//   cargo rustc --release --lib --crate-type staticlib
//   g++ -std=c++17 -Iinclude examples/cpp/crm_plugin.cpp target/release/libprivseg.a
//       -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o crm_plugin_cpp
//   ./crm_plugin_cpp examples/c/policy.json
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "privseg.hpp"

namespace {

const char *const kNoticeSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

privseg_attribute_update spend(const char *subject, std::int64_t amount, std::int64_t at) {
    privseg_attribute_update u{};
    u.subject = privseg::detail::to_str(subject);
    u.attribute = privseg::detail::to_str("total_spend");
    u.value.kind = PRIVSEG_VALUE_KIND_INTEGER;
    u.value.integer = amount;
    u.verified_at = at;
    return u;
}

privseg_attribute_update country(const char *subject, const char *code, std::int64_t at) {
    privseg_attribute_update u{};
    u.subject = privseg::detail::to_str(subject);
    u.attribute = privseg::detail::to_str("country");
    u.value.kind = PRIVSEG_VALUE_KIND_STRING;
    u.value.text = privseg::detail::to_str(code);
    u.verified_at = at;
    return u;
}

privseg_event grant(const char *subject, std::int64_t at) {
    privseg_event e{};
    e.subject = privseg::detail::to_str(subject);
    e.kind = PRIVSEG_EVENT_KIND_CONSENT_GRANTED;
    e.purpose = privseg::detail::to_str("marketing.email");
    e.at = at;
    e.notice_version = privseg::detail::to_str("v3");
    e.notice_sha256 = privseg::detail::to_str(kNoticeSha);
    e.channel = privseg::detail::to_str("web");
    e.collector = privseg::detail::to_str("signup-form");
    return e;
}

int run(const char *policy_path) {
    std::cout << "privseg " << privseg::version() << "\n";
    std::ifstream file(policy_path, std::ios::binary);
    if (!file) {
        std::cerr << "cannot read " << policy_path << "\n";
        return 1;
    }
    std::stringstream json;
    json << file.rdbuf();
    privseg::Policy policy = privseg::Policy::from_json(json.str());
    // The plugin runs as its service identity, authenticated by the host.
    privseg::Engine engine(policy, "crm-sync", {"crm"});

    const std::int64_t t0 = privseg::parse_time("2026-03-01T10:00:00Z");
    const std::int64_t now = privseg::parse_time("2026-03-02T09:00:00Z");

    // c-1 on its own; the others in one all-or-nothing import with their
    // values and consents (c-5 never consented).
    engine.add_subject("c-1", "EU-FR", "1980-05-01");
    engine.set_string("c-1", "country", "FR", t0);
    engine.set_attributes({spend("c-1", 800, t0)});
    engine.grant("c-1", "marketing.email", t0, "v3", kNoticeSha, "web", "signup-form");

    std::vector<privseg_subject> batch;
    const char *ids[] = {"c-2", "c-3", "c-4", "c-5", "c-6"};
    const char *juris[] = {"EU-DE", "EU-ES", "EU-FR", "EU-DE", "EU-FR"};
    for (int i = 0; i < 5; i++) {
        privseg_subject s{};
        s.id = privseg::detail::to_str(ids[i]);
        s.jurisdiction = privseg::detail::to_str(juris[i]);
        s.birth_date = privseg::detail::to_str("1975-01-31");
        batch.push_back(s);
    }
    std::vector<privseg_event> grants;
    for (const char *id : {"c-2", "c-3", "c-4", "c-6"}) {
        grants.push_back(grant(id, t0));
    }
    engine.bulk_import(batch,
                       {country("c-2", "DE", t0), spend("c-2", 900, t0), country("c-3", "ES", t0),
                        spend("c-3", 1000, t0), country("c-4", "FR", t0), spend("c-4", 100, t0),
                        country("c-5", "DE", t0), spend("c-5", 700, t0), country("c-6", "FR", t0),
                        spend("c-6", 600, t0)},
                       grants);
    engine.record_json(
        R"({"subject": "c-2", "kind": "consent_withdrawn", "purpose": "marketing.email",)"
        R"( "at": "2026-03-01T11:00:00Z", "channel": "web", "collector": "prefs-page"})");

    privseg::Segment segment = engine.compile(
        "segment \"lapsed_vip\" for marketing.email\n"
        "where country in (\"FR\", \"DE\") and total_spend >= 500");
    {
        privseg::Members members = engine.evaluate(segment, now);
        std::cout << "members of " << segment.name() << ": " << members.count() << "\n";
        for (const std::string &id : members.ids(engine)) {
            std::cout << "member " << id << "\n";
        }
    }
    std::cout << "explain c-2: " << engine.explain(segment, "c-2", now) << "\n";

    const privseg::Count count = engine.count(segment, now);
    std::cout << "count of lapsed_vip: " << (count.below_k ? "fewer than " : "") << count.value << "\n";

    // The master secret comes from the host's key store; this one is a demo.
    const std::string secret("demo secret: never use this one", 32);
    std::cout << "export to mailer:\n"
              << engine.export_to(segment, now, "mailer", {"country"}, PRIVSEG_EXPORT_FORMAT_JSONL, secret, 1);

    const std::string report = engine.subject_report("c-1", {segment}, now);
    std::cout << "report c-1: " << report.size() << " bytes, "
              << (report.find("\"member\":true") != std::string::npos ? "in" : "not in") << " lapsed_vip\n";

    // A consent signal from the CMP, read field by field.
    const privseg::Signal signal =
        privseg::Signal::decode("DBACNYA~CP1R2oAP1R2oAAHABBENBkFoAPAAAEIAAAYgAFEBAAAAAA.IAFQAYAAgAUA~1YYN");
    std::cout << "signal sections:";
    for (std::uint16_t id : signal.gpp_section_ids()) {
        std::cout << " " << id;
    }
    std::cout << "; purposes consented:";
    for (std::uint16_t p : signal.tcf_ids(PRIVSEG_TCF_LIST_PURPOSES_CONSENT)) {
        std::cout << " " << p;
    }
    std::cout << "; usp opt-out of sale: " << signal.usp().opt_out_sale << "\n";
    try {
        privseg::Signal::decode("1YNN").tcf_ids(PRIVSEG_TCF_LIST_VENDOR_CONSENTS);
        std::cerr << "a US Privacy string gave TCF vendors\n";
        return 1;
    } catch (const privseg::Error &e) {
        std::cout << "usp vendors: " << privseg_status_name(e.status()) << "\n";
    }

    // An analyst may count, but not see who is in a segment.
    engine.set_actor("ann", {"analyst"});
    try {
        engine.evaluate(segment, now);
        std::cerr << "the analyst saw the members\n";
        return 1;
    } catch (const privseg::Error &e) {
        std::cout << "as ann: evaluate refused: " << privseg_status_name(e.status()) << ": " << e.message() << "\n";
    }
    const privseg::Count counted = engine.count(segment, now);
    std::cout << "as ann: count of lapsed_vip: " << (counted.below_k ? "fewer than " : "") << counted.value
              << "\n";
    engine.set_actor("crm-sync", {"crm"});

    try {
        engine.compile("segment \"allergic\" for marketing.email where allergy = true");
        std::cerr << "the health segment was accepted\n";
        return 1;
    } catch (const privseg::Error &e) {
        std::cout << "refused: " << privseg_status_name(e.status()) << ", rule " << e.rule() << ", line "
                  << e.line() << ", column " << e.column() << "\n"
                  << e.message() << "\n";
    }

    engine.erase("c-6");
    std::cout << "after erasing c-6: " << engine.evaluate(segment, now).count() << " member(s)\n";

    try {
        engine.erase("c-6");
    } catch (const privseg::Error &e) {
        std::cout << "erasing c-6 again: " << privseg_status_name(e.status()) << "\n";
    }
    std::cout << "audit log: " << engine.audit_len() << " entries\n";
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " POLICY.json\n";
        return 2;
    }
    try {
        return run(argv[1]);
    } catch (const privseg::Error &e) {
        std::cerr << "privseg error " << privseg_status_name(e.status()) << ": " << e.what() << "\n";
        return 1;
    }
}
