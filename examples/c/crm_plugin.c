/*
 * A small CRM plugin written against the privseg C API: it loads a policy,
 * runs as its service identity (an actor with the policy's "crm" role),
 * adds customers, records their consents and a withdrawal, evaluates a
 * segment, prints its members, counts it, exports it to a recipient under
 * pseudonyms, and shows how a segment that breaks the policy is refused and
 * how an actor without the permission is refused.
 *
 * Build (from the repository root):
 *   cargo rustc --release --lib --crate-type staticlib
 *   gcc -std=c11 -Iinclude examples/c/crm_plugin.c target/release/libprivseg.a \
 *       -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o crm_plugin
 *   ./crm_plugin examples/c/policy.json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privseg.h"

/* Prints the thread's last error message and exits. */
static void die(const char *what, privseg_status status) {
    char msg[1024];
    size_t n = 0;
    if (privseg_last_error_message(msg, sizeof msg, &n) != PRIVSEG_STATUS_OK) {
        msg[0] = '\0';
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, privseg_status_name(status), msg);
    exit(1);
}

#define CHECK(call)                                   \
    do {                                              \
        privseg_status check_status_ = (call);        \
        if (check_status_ != PRIVSEG_STATUS_OK) {     \
            die(#call, check_status_);                \
        }                                             \
    } while (0)

static privseg_str str(const char *s) {
    privseg_str r;
    r.ptr = s;
    r.len = s ? strlen(s) : 0;
    return r;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    if (!buf) {
        exit(1);
    }
    *len = n;
    return buf;
}

/* A consent grant for the email purpose, shown notice v3. */
static privseg_event grant(const char *subject, int64_t at) {
    privseg_event e;
    memset(&e, 0, sizeof e);
    e.subject = str(subject);
    e.kind = PRIVSEG_EVENT_KIND_CONSENT_GRANTED;
    e.purpose = str("marketing.email");
    e.at = at;
    e.notice_version = str("v3");
    e.notice_sha256 = str("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    e.channel = str("web");
    e.collector = str("signup-form");
    return e;
}

static privseg_attribute_update spend(const char *subject, int64_t amount, int64_t at) {
    privseg_attribute_update u;
    memset(&u, 0, sizeof u);
    u.subject = str(subject);
    u.attribute = str("total_spend");
    u.value.kind = PRIVSEG_VALUE_KIND_INTEGER;
    u.value.integer = amount;
    u.verified_at = at;
    return u;
}

static privseg_attribute_update country(const char *subject, const char *code, int64_t at) {
    privseg_attribute_update u;
    memset(&u, 0, sizeof u);
    u.subject = str(subject);
    u.attribute = str("country");
    u.value.kind = PRIVSEG_VALUE_KIND_STRING;
    u.value.text = str(code);
    u.verified_at = at;
    return u;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s POLICY.json\n", argv[0]);
        return 2;
    }
    printf("privseg %s\n", privseg_version());

    /* The policy. */
    size_t json_len = 0;
    char *json = read_file(argv[1], &json_len);
    const privseg_policy *policy = NULL;
    privseg_error *err = NULL;
    privseg_status st = privseg_policy_from_json(json, json_len, &policy, &err);
    free(json);
    if (st != PRIVSEG_STATUS_OK) {
        char msg[2048];
        size_t n = 0;
        privseg_error_message(err, msg, sizeof msg, &n);
        fprintf(stderr, "policy refused: %s\n", msg);
        privseg_error_free(err);
        return 1;
    }

    /* The plugin runs as one service identity, which the host has
     * authenticated; the policy's "crm" role says what it may do. */
    privseg_engine *engine = NULL;
    privseg_str crm_roles[1] = {str("crm")};
    CHECK(privseg_engine_new(policy, PRIVSEG_LIT("crm-sync"), crm_roles, 1, &engine));

    int64_t t0 = 0, t1 = 0, now = 0;
    CHECK(privseg_time_parse(PRIVSEG_LIT("2026-03-01T10:00:00Z"), &t0));
    CHECK(privseg_time_parse(PRIVSEG_LIT("2026-03-01T11:00:00Z"), &t1));
    CHECK(privseg_time_parse(PRIVSEG_LIT("2026-03-02T09:00:00Z"), &now));

    /* Customers: one on its own, the rest as a batch. */
    CHECK(privseg_engine_add_subject(engine, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"),
                                     PRIVSEG_LIT("1980-05-01")));
    privseg_subject batch[5];
    const char *ids[5] = {"c-2", "c-3", "c-4", "c-5", "c-6"};
    const char *juris[5] = {"EU-DE", "EU-ES", "EU-FR", "EU-DE", "EU-FR"};
    for (int i = 0; i < 5; i++) {
        batch[i].id = str(ids[i]);
        batch[i].jurisdiction = str(juris[i]);
        batch[i].birth_date = str("1975-01-31");
    }
    CHECK(privseg_engine_add_subjects(engine, batch, 5));

    /* Attributes: one on its own, the rest as a batch. */
    privseg_value fr;
    memset(&fr, 0, sizeof fr);
    fr.kind = PRIVSEG_VALUE_KIND_STRING;
    fr.text = str("FR");
    CHECK(privseg_engine_set_attribute(engine, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &fr, t0));
    privseg_attribute_update updates[] = {
        spend("c-1", 800, t0),        country("c-2", "DE", t0), spend("c-2", 900, t0),
        country("c-3", "ES", t0),     spend("c-3", 1000, t0),   country("c-4", "FR", t0),
        spend("c-4", 100, t0),        country("c-5", "DE", t0), spend("c-5", 700, t0),
        country("c-6", "FR", t0),     spend("c-6", 600, t0),
    };
    CHECK(privseg_engine_set_attributes(engine, updates, sizeof updates / sizeof updates[0]));

    /* Consents: c-1 on its own, c-2, c-3, c-4, c-6 as a batch (c-5 never
     * consented); then c-2 withdraws, recorded from the CRM's JSON. */
    privseg_event g1 = grant("c-1", t0);
    CHECK(privseg_engine_record(engine, &g1));
    privseg_event grants[] = {grant("c-2", t0), grant("c-3", t0), grant("c-4", t0), grant("c-6", t0)};
    CHECK(privseg_engine_record_batch(engine, grants, 4));
    const char *withdrawal =
        "{\"subject\": \"c-2\", \"kind\": \"consent_withdrawn\", \"purpose\": \"marketing.email\","
        " \"at\": \"2026-03-01T11:00:00Z\", \"channel\": \"web\", \"collector\": \"prefs-page\"}";
    CHECK(privseg_engine_record_json(engine, withdrawal, strlen(withdrawal)));

    /* The segment. */
    const char *text =
        "segment \"lapsed_vip\" for marketing.email\n"
        "where country in (\"FR\", \"DE\") and total_spend >= 500";
    const privseg_segment *segment = NULL;
    st = privseg_engine_compile(engine, text, strlen(text), &segment, &err);
    if (st != PRIVSEG_STATUS_OK) {
        die("privseg_engine_compile", st);
    }

    privseg_members *members = NULL;
    CHECK(privseg_engine_evaluate(engine, segment, now, &members));
    uint64_t count = 0;
    CHECK(privseg_members_count(members, &count));
    printf("members of lapsed_vip: %llu\n", (unsigned long long)count);

    /* By iteration. */
    char id[PRIVSEG_MAX_ID_LEN + 1];
    size_t id_len = 0, cursor = 0;
    while ((st = privseg_members_next(members, engine, &cursor, id, sizeof id, &id_len)) ==
           PRIVSEG_STATUS_OK) {
        printf("member %s\n", id);
    }
    if (st != PRIVSEG_STATUS_DONE) {
        die("privseg_members_next", st);
    }

    /* All at once: released once into a library buffer, then copied out
     * into memory of the size it says. */
    privseg_buffer *released = NULL;
    CHECK(privseg_members_ids(members, engine, &released));
    size_t need = 0;
    CHECK(privseg_buffer_len(released, &need));
    char *all = malloc(need + 1);
    size_t got = 0;
    CHECK(privseg_buffer_copy(released, all, need + 1, &got));
    privseg_buffer_free(released);
    printf("ids:");
    for (size_t at = 0; at < got; at += strlen(all + at) + 1) {
        printf(" %s", all + at);
    }
    printf("\n");
    free(all);
    privseg_members_free(members);

    /* Why is c-2 out? */
    char explanation[4096];
    size_t explanation_len = 0;
    CHECK(privseg_engine_explain(engine, segment, PRIVSEG_LIT("c-2"), now, explanation,
                                 sizeof explanation, &explanation_len));
    printf("explain c-2: %s\n", explanation);

    /* A count is released only at or above the policy's threshold k. */
    uint32_t below_k = 0;
    CHECK(privseg_engine_count(engine, segment, now, &count, &below_k));
    if (below_k) {
        printf("count of lapsed_vip: fewer than %llu\n", (unsigned long long)count);
    } else {
        printf("count of lapsed_vip: %llu\n", (unsigned long long)count);
    }

    /* An export to the mailer: ids pseudonymised for it, one field. The
     * master secret comes from the host's key store; this one is a demo. */
    static const unsigned char secret[32] = "demo secret: never use this one";
    privseg_str fields[1] = {str("country")};
    privseg_buffer *export_buf = NULL;
    CHECK(privseg_engine_export(engine, segment, now, PRIVSEG_LIT("mailer"), fields, 1,
                                PRIVSEG_EXPORT_FORMAT_JSONL, secret, sizeof secret, 1, &export_buf));
    size_t exported_len = 0;
    CHECK(privseg_buffer_len(export_buf, &exported_len));
    char *exported = malloc(exported_len + 1);
    CHECK(privseg_buffer_copy(export_buf, exported, exported_len + 1, &exported_len));
    privseg_buffer_free(export_buf);
    printf("export to mailer:\n%s", exported);
    free(exported);

    /* What the engine holds about c-1, for an access request. */
    char report[8192];
    size_t report_len = 0;
    CHECK(privseg_engine_subject_report(engine, PRIVSEG_LIT("c-1"), &segment, 1, now, report,
                                        sizeof report, &report_len));
    printf("report c-1: %zu bytes, %s\n", report_len,
           strstr(report, "\"member\":true") ? "in lapsed_vip" : "not in lapsed_vip");

    /* An analyst may count, but not see who is in a segment. */
    privseg_str analyst_roles[1] = {str("analyst")};
    CHECK(privseg_engine_set_actor(engine, PRIVSEG_LIT("ann"), analyst_roles, 1));
    st = privseg_engine_evaluate(engine, segment, now, &members);
    if (st == PRIVSEG_STATUS_OK) {
        fprintf(stderr, "the analyst saw the members\n");
        return 1;
    }
    char denied[512];
    size_t denied_len = 0;
    CHECK(privseg_last_error_message(denied, sizeof denied, &denied_len));
    printf("as ann: evaluate refused: %s: %s\n", privseg_status_name(st), denied);
    CHECK(privseg_engine_count(engine, segment, now, &count, &below_k));
    printf("as ann: count of lapsed_vip: %s%llu\n", below_k ? "fewer than " : "",
           (unsigned long long)count);
    CHECK(privseg_engine_set_actor(engine, PRIVSEG_LIT("crm-sync"), crm_roles, 1));

    /* A segment that reads health data for email marketing is refused. */
    const char *bad = "segment \"allergic\" for marketing.email where allergy = true";
    const privseg_segment *refused = NULL;
    st = privseg_engine_compile(engine, bad, strlen(bad), &refused, &err);
    if (st == PRIVSEG_STATUS_OK) {
        fprintf(stderr, "the health segment was accepted\n");
        return 1;
    }
    char rule[16], message[2048];
    size_t rule_len = 0, message_len = 0;
    CHECK(privseg_error_rule(err, rule, sizeof rule, &rule_len));
    CHECK(privseg_error_message(err, message, sizeof message, &message_len));
    printf("refused: %s, rule %s, line %zu, column %zu\n%s\n", privseg_status_name(st), rule,
           privseg_error_line(err), privseg_error_column(err), message);
    privseg_error_free(err);

    /* The right to erasure. */
    CHECK(privseg_engine_erase(engine, PRIVSEG_LIT("c-6")));
    CHECK(privseg_engine_evaluate(engine, segment, now, &members));
    CHECK(privseg_members_count(members, &count));
    printf("after erasing c-6: %llu member(s)\n", (unsigned long long)count);
    privseg_members_free(members);

    /* Every call above, the refusal included, is in the audit log. */
    uint64_t entries = 0;
    CHECK(privseg_engine_audit_len(engine, &entries));
    printf("audit log: %llu entries\n", (unsigned long long)entries);

    privseg_segment_free(segment);
    privseg_engine_free(engine);
    privseg_policy_free(policy);
    return 0;
}
