/*
 * Bad input through the C API: every case must give its status, never a
 * crash. Prints one line per failed expectation and a summary; exits 1 if
 * any expectation failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "privseg.h"

static const char POLICY[] =
    "{\"controller\": {\"name\": \"Acme\"},"
    " \"categories\": [{\"key\": \"user.location\"}, {\"key\": \"user.health\", \"special\": true}],"
    " \"attributes\": [{\"name\": \"country\", \"type\": \"categorical\", \"values\": [\"FR\", \"DE\"],"
    " \"category\": \"user.location\"},"
    " {\"name\": \"allergy\", \"type\": \"boolean\", \"category\": \"user.health\"}],"
    " \"purposes\": [{\"key\": \"marketing.email\", \"basis\": \"consent\","
    " \"categories\": [\"user.location\"], \"accepted_notice_versions\": [\"v3\"]}],"
    " \"recipients\": [{\"id\": \"mailer\", \"name\": \"Mailer SAS\", \"country\": \"FR\","
    " \"dpa_reference\": \"DPA-1\", \"purposes\": [\"marketing\"], \"ccpa_role\": \"service_provider\"}],"
    " \"roles\": [{\"name\": \"crm\", \"subjects\": true, \"count\": [\"marketing\"],"
    " \"member_ids\": [\"marketing\"], \"explain\": [\"marketing\"], \"export\": [\"mailer\"]},"
    " {\"name\": \"analyst\", \"count\": [\"marketing\"]}]}";

/* The actor the engines of this test run as. */
static const char ACTOR[] = "crm-sync";

static const char SHA[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char BAD_UTF8[] = "c-\xff\xfe";

static privseg_str s(const char *text) {
    privseg_str r;
    r.ptr = text;
    r.len = text ? strlen(text) : 0;
    return r;
}

static void versions(void) {
    EXPECT(strcmp(privseg_version(), PRIVSEG_VERSION) == 0);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", PRIVSEG_VERSION_MAJOR, PRIVSEG_VERSION_MINOR,
             PRIVSEG_VERSION_PATCH);
    EXPECT(strncmp(privseg_version(), expected, strlen(expected)) == 0);
    EXPECT(strcmp(privseg_status_name(PRIVSEG_STATUS_SEGMENT_REFUSED), "PRIVSEG_STATUS_SEGMENT_REFUSED") == 0);
    EXPECT(privseg_status_name(8) == NULL);
    EXPECT(strcmp(privseg_status_name(309), "PRIVSEG_STATUS_ACCESS_DENIED") == 0);
    EXPECT(strcmp(privseg_status_name(PRIVSEG_STATUS_AUDIT), "PRIVSEG_STATUS_AUDIT") == 0);
    EXPECT(PRIVSEG_STATUS_AUDIT == 310 && PRIVSEG_STATUS_ENGINE_OTHER == 308);
    EXPECT(privseg_status_name(99999) == NULL);
}

/* A panic inside the library: a status and a message with its place, and
 * nothing on stderr (the test runner checks this program's stderr is empty). */
static void panics(void) {
    EXPECT_STATUS(privseg_check_panic(), PRIVSEG_STATUS_PANIC);
    char msg[512];
    size_t n = 0;
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(msg, "privseg panicked at src/ffi/mod.rs:", 35) == 0);
    EXPECT(strstr(msg, "asked for by privseg_check_panic") != NULL);
    /* Twice: the quiet handling is not a one-off. */
    EXPECT_STATUS(privseg_check_panic(), PRIVSEG_STATUS_PANIC);
}

static void frees_of_null(void) {
    privseg_policy_free(NULL);
    privseg_policy_builder_free(NULL);
    privseg_engine_free(NULL);
    privseg_segment_free(NULL);
    privseg_members_free(NULL);
    privseg_error_free(NULL);
    EXPECT(privseg_policy_clone(NULL) == NULL);
    EXPECT(privseg_segment_clone(NULL) == NULL);
}

static void policies(void) {
    const privseg_policy *p = NULL;
    privseg_error *err = NULL;
    EXPECT_STATUS(privseg_policy_from_json(NULL, 3, &p, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_from_json(POLICY, strlen(POLICY), NULL, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_from_json(BAD_UTF8, strlen(BAD_UTF8), &p, &err), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_policy_from_json(POLICY, (size_t)-1, &p, &err), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT(p == NULL && err == NULL);
    /* A wrong length cuts the JSON short: a JSON error with a position. */
    EXPECT_STATUS(privseg_policy_from_json(POLICY, 20, &p, &err), PRIVSEG_STATUS_POLICY_JSON);
    EXPECT(p == NULL && err != NULL);
    EXPECT_STATUS(privseg_error_status(err), PRIVSEG_STATUS_POLICY_JSON);
    EXPECT(privseg_error_line(err) == 1);
    EXPECT(privseg_error_column(err) > 0);
    privseg_error_free(err);
    err = NULL;
    /* Without an err_out the status and last message still tell. */
    EXPECT_STATUS(privseg_policy_from_json("{}", 2, &p, NULL), PRIVSEG_STATUS_POLICY_JSON);
    const char *invalid =
        "{\"controller\": {\"name\": \"A\"}, \"categories\": [], \"attributes\": [],"
        " \"purposes\": [{\"key\": \"m\", \"basis\": \"consent\", \"categories\": [\"nope\"]}]}";
    EXPECT_STATUS(privseg_policy_from_json(invalid, strlen(invalid), &p, &err), PRIVSEG_STATUS_POLICY_INVALID);
    char msg[512];
    size_t n = 0;
    EXPECT_STATUS(privseg_error_message(err, msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "$.purposes[0]") != NULL);
    privseg_error_free(err);
    EXPECT_STATUS(privseg_policy_version(NULL, msg, sizeof msg, &n), PRIVSEG_STATUS_NULL_PARAMETER);
}

static void builders(void) {
    privseg_policy_builder *b = NULL;
    EXPECT_STATUS(privseg_policy_builder_new(PRIVSEG_LIT("Acme"), NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_builder_new(BAD_UTF8, strlen(BAD_UTF8), &b), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT(b == NULL);
    EXPECT_STATUS(privseg_policy_builder_new(PRIVSEG_LIT("Acme"), &b), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_policy_builder_category(NULL, PRIVSEG_LIT("user"), 0, 0), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_builder_category(b, PRIVSEG_LIT("user.location"), 64, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_category(b, PRIVSEG_LIT("user.location"), 0, 365), PRIVSEG_STATUS_OK);
    privseg_str values[2] = {s("FR"), s("DE")};
    EXPECT_STATUS(privseg_policy_builder_attribute_categorical(b, PRIVSEG_LIT("country"),
                                                               PRIVSEG_LIT("user.location"), NULL, 2),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_str bad_values[1] = {{BAD_UTF8, 4}};
    EXPECT_STATUS(privseg_policy_builder_attribute_categorical(b, PRIVSEG_LIT("country"),
                                                               PRIVSEG_LIT("user.location"), bad_values, 1),
                  PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_policy_builder_attribute_categorical(b, PRIVSEG_LIT("country"),
                                                               PRIVSEG_LIT("user.location"), values, 2),
                  PRIVSEG_STATUS_OK);
    privseg_str cats[1] = {s("user.location")};
    privseg_str notices[1] = {s("v3")};
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("marketing.email"), 0, cats, 1, notices, 1, 0, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("marketing.email"), 7, cats, 1, notices, 1, 0, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("marketing.email"), PRIVSEG_BASIS_CONSENT, cats,
                                                 1, notices, 1, PRIVSEG_PURPOSE_SOFT_OPT_IN, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("marketing.email"), PRIVSEG_BASIS_CONSENT, cats,
                                                 1, notices, 1, 1u << 20, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("marketing.email"), PRIVSEG_BASIS_CONSENT, cats,
                                                 1, notices, 1, PRIVSEG_PURPOSE_EMAIL, 365),
                  PRIVSEG_STATUS_OK);
    /* Roles: permission bits are checked, and purposes go with purpose permissions. */
    privseg_str marketing[1] = {s("marketing")};
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), marketing, 1, 64),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), marketing, 1,
                                              PRIVSEG_PERMISSION_COUNT | (1u << 31)),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), NULL, 0, PRIVSEG_PERMISSION_MEMBER_IDS),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), marketing, 1, PRIVSEG_PERMISSION_SUBJECTS),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), NULL, 1, PRIVSEG_PERMISSION_COUNT),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_builder_role(b, BAD_UTF8, strlen(BAD_UTF8), marketing, 1, PRIVSEG_PERMISSION_COUNT),
                  PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_policy_builder_role(NULL, PRIVSEG_LIT("crm"), marketing, 1, PRIVSEG_PERMISSION_COUNT),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("crm"), marketing, 1,
                                              PRIVSEG_PERMISSION_COUNT | PRIVSEG_PERMISSION_MEMBER_IDS |
                                                  PRIVSEG_PERMISSION_EXPLAIN | PRIVSEG_PERMISSION_SUBJECTS |
                                                  PRIVSEG_PERMISSION_READ_AUDIT | PRIVSEG_PERMISSION_ADMINISTER),
                  PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_policy_builder_role(b, PRIVSEG_LIT("auditor"), NULL, 0, PRIVSEG_PERMISSION_READ_AUDIT),
                  PRIVSEG_STATUS_OK);
    const privseg_policy *p = NULL;
    privseg_error *err = NULL;
    EXPECT_STATUS(privseg_policy_builder_build(b, NULL, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_policy_builder_build(b, &p, &err), PRIVSEG_STATUS_OK);
    EXPECT(p != NULL && err == NULL);
    /* The builder is used up. */
    EXPECT_STATUS(privseg_policy_builder_build(b, &p, &err), PRIVSEG_STATUS_ALREADY_USED);
    EXPECT_STATUS(privseg_policy_builder_category(b, PRIVSEG_LIT("user.other"), 0, 0),
                  PRIVSEG_STATUS_ALREADY_USED);
    privseg_policy_builder_free(b);

    /* A policy from the builder works: a segment compiles against it. */
    const privseg_segment *seg = NULL;
    const char *text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), &seg, &err), PRIVSEG_STATUS_OK);
    /* Its roles work: "crm" may add subjects and evaluate, "auditor" may not. */
    privseg_engine *e = NULL;
    privseg_str crm[1] = {s("crm")};
    privseg_str auditor[1] = {s("auditor")};
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT("crm-sync"), crm, 1, &e), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0), PRIVSEG_STATUS_OK);
    privseg_members *m = NULL;
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_OK);
    privseg_members_free(m);
    m = NULL;
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("audrey"), auditor, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT(m == NULL);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-2"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_ACCESS_DENIED);
    char denied[256];
    size_t denied_len = 0;
    EXPECT_STATUS(privseg_last_error_message(denied, sizeof denied, &denied_len), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(denied, "access refused: actor \"audrey\" lacks permission subjects") == 0);
    privseg_engine_free(e);
    privseg_segment_free(seg);

    /* A role naming a purpose the policy does not declare is refused at build. */
    privseg_policy_builder *r = NULL;
    EXPECT_STATUS(privseg_policy_builder_new(PRIVSEG_LIT("Acme"), &r), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_policy_builder_category(r, PRIVSEG_LIT("user.location"), 0, 0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_policy_builder_purpose(r, PRIVSEG_LIT("marketing.email"), PRIVSEG_BASIS_CONSENT, cats, 1,
                                                 notices, 1, 0, 0),
                  PRIVSEG_STATUS_OK);
    privseg_str analytics[1] = {s("analytics")};
    EXPECT_STATUS(privseg_policy_builder_role(r, PRIVSEG_LIT("analyst"), analytics, 1, PRIVSEG_PERMISSION_COUNT),
                  PRIVSEG_STATUS_OK);
    const privseg_policy *rp = NULL;
    EXPECT_STATUS(privseg_policy_builder_build(r, &rp, &err), PRIVSEG_STATUS_POLICY_INVALID);
    char role_msg[512];
    size_t role_len = 0;
    EXPECT_STATUS(privseg_error_message(err, role_msg, sizeof role_msg, &role_len), PRIVSEG_STATUS_OK);
    EXPECT(strstr(role_msg, "$.roles[0].count[0]") != NULL && strstr(role_msg, "analytics") != NULL);
    privseg_error_free(err);
    err = NULL;
    privseg_policy_builder_free(r);

    /* A builder whose policy is invalid: an error object, and used up. */
    EXPECT_STATUS(privseg_policy_builder_new(PRIVSEG_LIT("Acme"), &b), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_policy_builder_purpose(b, PRIVSEG_LIT("m"), PRIVSEG_BASIS_CONSENT, cats, 1, NULL, 0, 0, 0),
                  PRIVSEG_STATUS_OK);
    const privseg_policy *q = NULL;
    EXPECT_STATUS(privseg_policy_builder_build(b, &q, &err), PRIVSEG_STATUS_POLICY_INVALID);
    EXPECT(q == NULL && err != NULL);
    privseg_error_free(err);
    EXPECT_STATUS(privseg_policy_builder_build(b, &q, NULL), PRIVSEG_STATUS_ALREADY_USED);
    privseg_policy_builder_free(b);
    privseg_policy_free(p);
}

static void buffers(const privseg_policy *p) {
    privseg_error *err = NULL;
    const privseg_segment *seg = NULL;
    const char *text = "segment \"x\" for marketing.email where allergy = true";
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), &seg, &err), PRIVSEG_STATUS_SEGMENT_REFUSED);
    EXPECT(seg == NULL);
    char small[4];
    size_t need = 0;
    EXPECT_STATUS(privseg_error_message(err, small, sizeof small, &need), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(need > sizeof small);
    size_t need2 = 0;
    EXPECT_STATUS(privseg_error_message(err, NULL, 0, &need2), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(need2 == need);
    EXPECT_STATUS(privseg_error_message(err, NULL, 10, &need2), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_error_message(err, small, sizeof small, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_error_message(NULL, small, sizeof small, &need2), PRIVSEG_STATUS_NULL_PARAMETER);
    char exact[1024];
    size_t got = 0;
    /* need bytes are one too few (the NUL), need + 1 are enough. */
    EXPECT_STATUS(privseg_error_message(err, exact, need, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(privseg_error_message(err, exact, need + 1, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == need && strlen(exact) == need);
    EXPECT(strstr(exact, "^") != NULL);
    char rule[3];
    EXPECT_STATUS(privseg_error_rule(err, rule, sizeof rule, &got), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(rule, "R2") == 0);
    EXPECT_STATUS(privseg_error_rule(err, rule, 2, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(privseg_error_line(NULL) == 0 && privseg_error_column(NULL) == 0);
    EXPECT_STATUS(privseg_error_status(NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_error_free(err);

    /* A syntax error: no rule, a position. */
    err = NULL;
    const char *syntax = "segment \"x\" for marketing.email\nwhere country \"FR\"";
    EXPECT_STATUS(privseg_segment_compile(p, syntax, strlen(syntax), &seg, &err), PRIVSEG_STATUS_SEGMENT_SYNTAX);
    EXPECT(privseg_error_line(err) == 2);
    EXPECT_STATUS(privseg_error_rule(err, rule, sizeof rule, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == 0 && rule[0] == '\0');
    privseg_error_free(err);

    /* The last error message: asking for its size does not change it. */
    EXPECT_STATUS(privseg_engine_erase(NULL, PRIVSEG_LIT("c-1")), PRIVSEG_STATUS_NULL_PARAMETER);
    size_t last = 0;
    EXPECT_STATUS(privseg_last_error_message(NULL, 0, &last), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    char lastmsg[256];
    EXPECT_STATUS(privseg_last_error_message(lastmsg, sizeof lastmsg, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == last && strcmp(lastmsg, "engine is NULL") == 0);
    EXPECT_STATUS(privseg_last_error_message(lastmsg, sizeof lastmsg, NULL), PRIVSEG_STATUS_NULL_PARAMETER);

    /* Segments: NULLs, bad UTF-8, wrong lengths, JSON. */
    EXPECT_STATUS(privseg_segment_compile(NULL, text, strlen(text), &seg, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_segment_compile(p, NULL, 4, &seg, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), NULL, &err), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_segment_compile(p, BAD_UTF8, strlen(BAD_UTF8), &seg, &err), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_segment_compile(p, text, ((size_t)-1) / 2 + 1, &seg, &err),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_segment_compile(p, text, 10, &seg, NULL), PRIVSEG_STATUS_SEGMENT_SYNTAX);
    const char *json = "{\"name\": \"fr\", \"purpose\": \"marketing.email\","
                       " \"where\": {\"const\": true}}";
    EXPECT_STATUS(privseg_segment_from_json(p, json, strlen(json), &seg, NULL), PRIVSEG_STATUS_OK);
    char name[8];
    EXPECT_STATUS(privseg_segment_name(seg, name, sizeof name, &got), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(name, "fr") == 0);
    const privseg_segment *shared = privseg_segment_clone(seg);
    EXPECT(shared == seg);
    privseg_segment_free(seg);
    EXPECT_STATUS(privseg_segment_purpose(shared, name, sizeof name, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(got == strlen("marketing.email"));
    privseg_segment_free(shared);
    EXPECT_STATUS(privseg_segment_from_json(p, "{\"name\": 1}", 11, &seg, &err), PRIVSEG_STATUS_SEGMENT_SYNTAX);
    privseg_error_free(err);
}

static void actors(const privseg_policy *p) {
    privseg_engine *e = NULL;
    privseg_str crm[1] = {s("crm")};
    privseg_str bad_roles[2] = {s("crm"), {BAD_UTF8, 4}};
    EXPECT_STATUS(privseg_engine_new(NULL, PRIVSEG_LIT(ACTOR), crm, 1, &e), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), crm, 1, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    /* The actor id: NULL, not UTF-8, empty, surrounding space, control character. */
    EXPECT_STATUS(privseg_engine_new(p, NULL, 3, crm, 1, &e), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_new(p, BAD_UTF8, strlen(BAD_UTF8), crm, 1, &e), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_engine_new(p, ACTOR, 0, crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(" crm-sync"), crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT("crm\nsync"), crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    char msg[256];
    size_t n = 0;
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(msg, "invalid actor: id", 17) == 0);
    /* The roles: NULL with a count, not UTF-8. */
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), NULL, 1, &e), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), bad_roles, 2, &e), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(msg, "roles[1]", 8) == 0);
    EXPECT(e == NULL);

    /* No roles, or a role the policy does not define: nothing is granted. */
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT("nobody"), NULL, 0, &e), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_ACCESS_DENIED);
    privseg_str ghost[1] = {s("ghost")};
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("mallory"), ghost, 1), PRIVSEG_STATUS_OK);
    const privseg_segment *seg = NULL;
    const char *text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), &seg, NULL), PRIVSEG_STATUS_OK);
    privseg_members *m = NULL;
    uint64_t audit_before = 0, audit_after = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_before), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT(m == NULL);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(msg, "access refused: actor \"mallory\" lacks permission member_ids for purpose "
                       "marketing.email (unknown roles: ghost)") == 0);
    /* The refusal is recorded. */
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_after), PRIVSEG_STATUS_OK);
    EXPECT(audit_after == audit_before + 1);
    EXPECT_STATUS(privseg_engine_audit_len(e, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_audit_len(NULL, &audit_after), PRIVSEG_STATUS_NULL_PARAMETER);

    /* An analyst counts but sees no ids and explains nothing. */
    privseg_str analyst[1] = {s("analyst")};
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("ann"), analyst, 1), PRIVSEG_STATUS_OK);
    uint64_t count = 99;
    uint32_t below = 99;
    EXPECT_STATUS(privseg_engine_count(e, seg, 0, &count, &below), PRIVSEG_STATUS_OK);
    EXPECT(count == 11 && below == 1);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT_STATUS(privseg_engine_explain(e, seg, PRIVSEG_LIT("c-1"), 0, msg, sizeof msg, &n),
                  PRIVSEG_STATUS_ACCESS_DENIED);

    /* A bad new actor leaves the old one in place. */
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT(""), crm, 1), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT(ACTOR), NULL, 1), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_set_actor(NULL, PRIVSEG_LIT(ACTOR), crm, 1), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "actor \"ann\"") != NULL);
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT(ACTOR), crm, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_OK);
    privseg_members_free(m);
    privseg_segment_free(seg);
    privseg_engine_free(e);
}

/* Documented limits on ids, names, dates, times and jurisdictions. */
static void limits(const privseg_policy *p) {
    privseg_engine *e = NULL;
    privseg_str crm[1] = {s("crm")};
    char msg[512];
    size_t n = 0;
    /* A 1 MB actor id would be copied into every audit entry. */
    size_t big_len = 1024 * 1024;
    char *big = malloc(big_len);
    memset(big, 'a', big_len);
    EXPECT_STATUS(privseg_engine_new(p, big, big_len, crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "1048576 bytes long, more than the 256 allowed") != NULL && n < 300);
    EXPECT_STATUS(privseg_engine_new(p, big, PRIVSEG_MAX_ID_LEN + 1, crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT(e == NULL);
    EXPECT_STATUS(privseg_engine_new(p, big, PRIVSEG_MAX_ID_LEN, crm, 1, &e), PRIVSEG_STATUS_OK);
    privseg_engine_free(e);
    e = NULL;
    /* NUL, control and bidi characters in actor ids and role names. */
    EXPECT_STATUS(privseg_engine_new(p, "crm\0x", 5, crm, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT("crm\xE2\x80\xAEsync"), crm, 1, &e),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "U+202E") != NULL);
    privseg_str bidi_role[1] = {s("crm\xE2\x81\xA6")};
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), bidi_role, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    privseg_str long_role[1] = {{big, PRIVSEG_MAX_ID_LEN + 1}};
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), long_role, 1, &e), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT(e == NULL);
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), crm, 1, &e), PRIVSEG_STATUS_OK);
    uint64_t a0 = 0, a1 = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &a0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_set_actor(e, big, big_len, crm, 1), PRIVSEG_STATUS_INVALID_ARGUMENT);
    /* Subject ids. */
    EXPECT_STATUS(privseg_engine_add_subject(e, big, PRIVSEG_MAX_ID_LEN + 1, PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(n < 300);
    EXPECT_STATUS(privseg_engine_add_subject(e, "c\0-1", 4, PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-\xE2\x80\x8F" "1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-\x1b[31m"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    /* Jurisdictions: only real EU member states. */
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-XX"), NULL, 0),
                  PRIVSEG_STATUS_UNKNOWN_JURISDICTION);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-UK"), NULL, 0),
                  PRIVSEG_STATUS_UNKNOWN_JURISDICTION);
    /* Birth dates: none before 1900, none after today. */
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("1899-12-31")),
                  PRIVSEG_STATUS_INVALID_DATE);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "before 1900") != NULL);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("2999-01-01")),
                  PRIVSEG_STATUS_INVALID_DATE);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strstr(msg, "after today") != NULL);
    privseg_subject future[1];
    future[0].id = s("c-2");
    future[0].jurisdiction = s("EU-FR");
    future[0].birth_date = s("2999-01-01");
    EXPECT_STATUS(privseg_engine_add_subjects(e, future, 1), PRIVSEG_STATUS_INVALID_DATE);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(msg, "subjects[0]", 11) == 0);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("1900-01-01")),
                  PRIVSEG_STATUS_OK);
    /* Times outside the years 0000 to 9999. */
    const privseg_segment *seg = NULL;
    const char *text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), &seg, NULL), PRIVSEG_STATUS_OK);
    privseg_members *m = NULL;
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, INT64_MAX, &m), PRIVSEG_STATUS_INVALID_TIME);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, -62167219201LL, &m), PRIVSEG_STATUS_INVALID_TIME);
    EXPECT(m == NULL);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 253402300799LL, &m), PRIVSEG_STATUS_OK);
    privseg_members_free(m);
    privseg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.subject = s("c-1");
    ev.kind = PRIVSEG_EVENT_KIND_OBJECTION;
    ev.at = INT64_MIN;
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_TIME);
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &n), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(msg, "at: ", 4) == 0);
    /* Refused input changed nothing and recorded no id of its own. */
    EXPECT_STATUS(privseg_engine_audit_len(e, &a1), PRIVSEG_STATUS_OK);
    EXPECT(a1 == a0 + 2); /* the subject added, the evaluation */
    privseg_segment_free(seg);
    privseg_engine_free(e);
    free(big);
}

static void imports(const privseg_policy *p) {
    privseg_engine *e = NULL;
    privseg_str crm[1] = {s("crm")};
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), crm, 1, &e), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_OK);
    privseg_subject subjects[2];
    subjects[0].id = s("c-10");
    subjects[0].jurisdiction = s("EU-FR");
    subjects[0].birth_date = s("1980-01-01");
    subjects[1].id = s("c-11");
    subjects[1].jurisdiction = s("EU-DE");
    subjects[1].birth_date = s(NULL);
    privseg_attribute_update values[2];
    memset(values, 0, sizeof values);
    values[0].subject = s("c-10");
    values[0].attribute = s("country");
    values[0].value.kind = PRIVSEG_VALUE_KIND_STRING;
    values[0].value.text = s("FR");
    values[1] = values[0];
    values[1].subject = s("c-11");
    values[1].value.text = s("DE");
    privseg_event events[2];
    memset(events, 0, sizeof events);
    events[0].subject = s("c-10");
    events[0].kind = PRIVSEG_EVENT_KIND_CONSENT_GRANTED;
    events[0].purpose = s("marketing.email");
    events[0].at = 1772359200;
    events[0].notice_version = s("v3");
    events[0].notice_sha256 = s(SHA);
    events[1] = events[0];
    events[1].subject = s("c-1");
    char last[256];
    size_t got = 0, n = 0;
    uint64_t audit_before = 0, audit_after = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_before), PRIVSEG_STATUS_OK);

    /* Each bad item refuses the whole import, naming the item. */
    values[1].subject = s("c-12");
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "values[1]", 9) == 0);
    values[1].subject = s("c-11");
    values[1].value.text = s("IT");
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_INVALID_VALUE);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "subjects[1]", 11) == 0);
    values[1].value.text = s("DE");
    events[1].subject = s("c-9");
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "events[1]", 9) == 0);
    events[1].subject = s("c-1");
    subjects[1].id = s("c-1");
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 1, events, 2), PRIVSEG_STATUS_DUPLICATE_SUBJECT);
    subjects[1].id = s("c-11");
    EXPECT_STATUS(privseg_engine_import(e, NULL, 2, values, 2, events, 2), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, NULL, 2, events, 2), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, NULL, 2), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_import(NULL, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_subject_count(e, &n), PRIVSEG_STATUS_OK);
    EXPECT(n == 1);
    /* Nothing was changed, and nothing but refusals was recorded. */
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_after), PRIVSEG_STATUS_OK);
    EXPECT(audit_after == audit_before);

    /* An actor without the subjects permission imports nothing. */
    privseg_str analyst[1] = {s("analyst")};
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("ann"), analyst, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT(ACTOR), crm, 1), PRIVSEG_STATUS_OK);

    /* The good import: one audit entry; c-10 is in the segment, c-11 has no consent. */
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_before), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_import(e, subjects, 2, values, 2, events, 2), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit_after), PRIVSEG_STATUS_OK);
    EXPECT(audit_after == audit_before + 1);
    EXPECT_STATUS(privseg_engine_subject_count(e, &n), PRIVSEG_STATUS_OK);
    EXPECT(n == 3);
    EXPECT_STATUS(privseg_engine_import(e, NULL, 0, NULL, 0, NULL, 0), PRIVSEG_STATUS_OK);
    const privseg_segment *seg = NULL;
    const char *text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_engine_compile(e, text, strlen(text), &seg, NULL), PRIVSEG_STATUS_OK);
    privseg_members *m = NULL;
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 1772359300, &m), PRIVSEG_STATUS_OK);
    char ids[64];
    privseg_buffer *idbuf = NULL;
    EXPECT_STATUS(privseg_members_ids(m, e, &idbuf), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_buffer_copy(idbuf, ids, sizeof ids, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == 5 && strcmp(ids, "c-10") == 0);
    privseg_buffer_free(idbuf);
    privseg_members_free(m);
    privseg_segment_free(seg);
    privseg_engine_free(e);
}

static void engines(const privseg_policy *p) {
    privseg_engine *e = NULL;
    privseg_str crm[1] = {s("crm")};
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), crm, 1, &e), PRIVSEG_STATUS_OK);

    /* Evaluation with an empty engine. */
    const privseg_segment *seg = NULL;
    const char *text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_segment_compile(p, text, strlen(text), &seg, NULL), PRIVSEG_STATUS_OK);
    privseg_members *m = NULL;
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, &m), PRIVSEG_STATUS_OK);
    uint64_t count = 99;
    EXPECT_STATUS(privseg_members_count(m, &count), PRIVSEG_STATUS_OK);
    EXPECT(count == 0);
    size_t cursor = 0, got = 7;
    char id[PRIVSEG_MAX_ID_LEN + 1];
    privseg_buffer *ids = NULL;
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, id, sizeof id, &got), PRIVSEG_STATUS_DONE);
    EXPECT(cursor == 0 && got == 7);
    EXPECT_STATUS(privseg_members_ids(m, e, &ids), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_buffer_len(ids, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == 0);
    privseg_buffer_free(ids);
    ids = NULL;
    EXPECT_STATUS(privseg_members_count(NULL, &count), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_members_count(m, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_members_ids(m, NULL, &ids), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_members_ids(m, e, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_members_next(m, e, NULL, id, sizeof id, &got), PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_members_free(m);
    EXPECT_STATUS(privseg_engine_evaluate(NULL, seg, 0, &m), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_evaluate(e, NULL, 0, &m), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 0, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    size_t n = 99;
    EXPECT_STATUS(privseg_engine_subject_count(e, &n), PRIVSEG_STATUS_OK);
    EXPECT(n == 0);
    EXPECT_STATUS(privseg_engine_explain(e, seg, PRIVSEG_LIT("c-1"), 0, id, sizeof id, &got),
                  PRIVSEG_STATUS_UNKNOWN_SUBJECT);

    /* Subjects. */
    EXPECT_STATUS(privseg_engine_add_subject(NULL, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_add_subject(e, NULL, 3, PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_add_subject(e, BAD_UTF8, strlen(BAD_UTF8), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 5),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("1980-13-01")),
                  PRIVSEG_STATUS_INVALID_DATE);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("XX"), NULL, 0),
                  PRIVSEG_STATUS_UNKNOWN_JURISDICTION);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT(" c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("1980-05-01")),
                  PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_DUPLICATE_SUBJECT);

    /* A batch with one bad item adds nothing. */
    privseg_subject batch[3];
    batch[0].id = s("c-2");
    batch[0].jurisdiction = s("EU-DE");
    batch[0].birth_date = s(NULL);
    batch[1].id = s("c-3");
    batch[1].jurisdiction = s("EU-DE");
    batch[1].birth_date = s("not a date");
    batch[2].id = s("c-2");
    batch[2].jurisdiction = s("EU-DE");
    batch[2].birth_date = s(NULL);
    EXPECT_STATUS(privseg_engine_add_subjects(e, batch, 3), PRIVSEG_STATUS_INVALID_DATE);
    char last[256];
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "subjects[1]", 11) == 0);
    batch[1].birth_date = s(NULL);
    EXPECT_STATUS(privseg_engine_add_subjects(e, batch, 3), PRIVSEG_STATUS_DUPLICATE_SUBJECT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "subjects[2]", 11) == 0);
    /* An id of the wrong form after good ones: still nothing is added. */
    batch[2].id = s("c-4 ");
    EXPECT_STATUS(privseg_engine_add_subjects(e, batch, 3), PRIVSEG_STATUS_INVALID_SUBJECT_ID);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "subjects[2]", 11) == 0);
    batch[2].jurisdiction = s("XX");
    batch[2].id = s("c-4");
    EXPECT_STATUS(privseg_engine_add_subjects(e, batch, 3), PRIVSEG_STATUS_UNKNOWN_JURISDICTION);
    EXPECT_STATUS(privseg_engine_add_subjects(e, NULL, 3), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_add_subjects(e, NULL, 0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_subject_count(e, &n), PRIVSEG_STATUS_OK);
    EXPECT(n == 1);
    EXPECT_STATUS(privseg_engine_add_subjects(e, batch, 2), PRIVSEG_STATUS_OK);

    /* Attributes. */
    privseg_value v;
    memset(&v, 0, sizeof v);
    v.kind = 0;
    v.text = s("FR");
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    v.kind = 42;
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    v.kind = PRIVSEG_VALUE_KIND_INTEGER;
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_INVALID_VALUE);
    v.kind = PRIVSEG_VALUE_KIND_BOOLEAN;
    v.integer = 2;
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("allergy"), &v, 0),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    v.kind = PRIVSEG_VALUE_KIND_STRING;
    v.text.ptr = NULL;
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    v.text = s("IT");
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_INVALID_VALUE);
    v.text = s("FR");
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-9"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("colour"), &v, 0),
                  PRIVSEG_STATUS_UNKNOWN_ATTRIBUTE);
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), NULL, 0),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_set_attribute(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("country"), &v, 0),
                  PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_clear_attribute(e, PRIVSEG_LIT("c-1"), BAD_UTF8, 4), PRIVSEG_STATUS_INVALID_UTF8);

    /* An attribute batch with one bad value changes nothing. */
    privseg_attribute_update ups[2];
    memset(ups, 0, sizeof ups);
    ups[0].subject = s("c-2");
    ups[0].attribute = s("country");
    ups[0].value.kind = PRIVSEG_VALUE_KIND_STRING;
    ups[0].value.text = s("FR");
    ups[1] = ups[0];
    ups[1].value.text = s("XX");
    EXPECT_STATUS(privseg_engine_set_attributes(e, ups, 2), PRIVSEG_STATUS_INVALID_VALUE);
    /* A bad time in the last update leaves the first unapplied too: nothing
     * is changed or recorded (an applied update is an audit entry). */
    uint64_t batch_before = 0, batch_after = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &batch_before), PRIVSEG_STATUS_OK);
    ups[1] = ups[0];
    ups[1].verified_at = INT64_MAX;
    EXPECT_STATUS(privseg_engine_set_attributes(e, ups, 2), PRIVSEG_STATUS_INVALID_TIME);
    EXPECT_STATUS(privseg_engine_audit_len(e, &batch_after), PRIVSEG_STATUS_OK);
    EXPECT(batch_after == batch_before);

    /* Events: the grant needs its notice; kinds and flags are checked. */
    privseg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.subject = s("c-1");
    ev.kind = PRIVSEG_EVENT_KIND_CONSENT_GRANTED;
    ev.purpose = s("marketing.email");
    ev.at = 1772359200;
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_EVENT);
    ev.notice_version = s("v3");
    ev.notice_sha256 = s(SHA);
    ev.kind = 0;
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_ARGUMENT);
    ev.kind = 14;
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_ARGUMENT);
    ev.kind = PRIVSEG_EVENT_KIND_CONSENT_GRANTED;
    ev.flags = 4;
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_ARGUMENT);
    ev.flags = 0;
    ev.purpose = s("marketing.sms");
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_INVALID_EVENT);
    ev.purpose = s("marketing.email");
    ev.subject = s("c-9");
    EXPECT_STATUS(privseg_engine_record(e, &ev), PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    ev.subject = s("c-1");
    EXPECT_STATUS(privseg_engine_record(NULL, &ev), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_record(e, NULL), PRIVSEG_STATUS_NULL_PARAMETER);

    /* An event batch with one bad event records nothing: c-1 stays out. */
    privseg_event evs[2];
    evs[0] = ev;
    evs[1] = ev;
    evs[1].notice_sha256 = s("abc");
    EXPECT_STATUS(privseg_engine_record_batch(e, evs, 2), PRIVSEG_STATUS_INVALID_EVENT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "events[1]", 9) == 0);
    evs[1] = ev;
    evs[1].subject = s("c-9");
    EXPECT_STATUS(privseg_engine_record_batch(e, evs, 2), PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "events[1]", 9) == 0);
    evs[1] = ev;
    evs[1].evidence_sha256 = s("not hex");
    EXPECT_STATUS(privseg_engine_record_batch(e, evs, 2), PRIVSEG_STATUS_INVALID_EVENT);
    evs[1].evidence_sha256.ptr = NULL;
    evs[1].evidence_sha256.len = 2;
    EXPECT_STATUS(privseg_engine_record_batch(e, evs, 2), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(last, "events[1]", 9) == 0);
    evs[1] = ev;
    evs[1].notice_sha256 = s("abc");
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 1772359300, &m), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_count(m, &count), PRIVSEG_STATUS_OK);
    EXPECT(count == 0);
    privseg_members_free(m);

    /* Events as JSON. */
    EXPECT_STATUS(privseg_engine_record_json(e, PRIVSEG_LIT("{\"subject\": ")), PRIVSEG_STATUS_INVALID_JSON);
    EXPECT_STATUS(privseg_engine_record_json(e, PRIVSEG_LIT("{\"subject\": \"c-1\", \"kind\": \"teleport\"}")),
                  PRIVSEG_STATUS_INVALID_JSON);
    EXPECT_STATUS(privseg_engine_record_json(e, NULL, 0), PRIVSEG_STATUS_NULL_PARAMETER);

    /* The good event, then c-1 is a member; a short buffer for its id. */
    EXPECT_STATUS(privseg_engine_record_batch(e, evs, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg, 1772359300, &m), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_count(m, &count), PRIVSEG_STATUS_OK);
    EXPECT(count == 1);
    cursor = 0;
    /* A buffer that cannot hold every id is refused before anything is
     * released or recorded. */
    uint64_t audit0 = 0, audit1 = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, id, 4, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(cursor == 0 && got == PRIVSEG_MAX_ID_LEN);
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, NULL, 0, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit1), PRIVSEG_STATUS_OK);
    EXPECT(audit1 == audit0);
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, id, sizeof id, &got), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(id, "c-1") == 0 && cursor == 1 && got == 3);
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, id, sizeof id, &got), PRIVSEG_STATUS_DONE);
    cursor = (size_t)-1;
    EXPECT_STATUS(privseg_members_next(m, e, &cursor, id, sizeof id, &got), PRIVSEG_STATUS_DONE);
    /* The ids are released once, into a buffer: one entry, then copies
     * (too small, then right) record nothing. */
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_ids(m, e, &ids), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_buffer_copy(ids, id, 3, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(got == 4);
    EXPECT_STATUS(privseg_buffer_copy(ids, id, 5, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == 4 && memcmp(id, "c-1\0", 4) == 0);
    EXPECT_STATUS(privseg_engine_audit_len(e, &audit1), PRIVSEG_STATUS_OK);
    EXPECT(audit1 == audit0 + 1);
    privseg_buffer_free(ids);
    ids = NULL;
    char json[1024];
    EXPECT_STATUS(privseg_engine_explain(e, seg, PRIVSEG_LIT("c-1"), 1772359300, json, sizeof json, &got),
                  PRIVSEG_STATUS_OK);
    EXPECT(strstr(json, "\"member\":true") != NULL);
    EXPECT_STATUS(privseg_engine_explain(e, seg, PRIVSEG_LIT("c-1"), 1772359300, json, 8, &got),
                  PRIVSEG_STATUS_BUFFER_TOO_SMALL);

    /* Counts: one member is fewer than k; out-parameters only on success. */
    uint64_t kcount = 99;
    uint32_t below = 99;
    EXPECT_STATUS(privseg_engine_count(e, seg, 1772359300, NULL, &below), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_count(e, seg, 1772359300, &kcount, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_count(e, NULL, 1772359300, &kcount, &below), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT(kcount == 99 && below == 99);
    EXPECT_STATUS(privseg_engine_count(e, seg, 1772359300, &kcount, &below), PRIVSEG_STATUS_OK);
    EXPECT(kcount == 11 && below == 1);

    /* Breakdowns: only by a categorical attribute the purpose may read. */
    EXPECT_STATUS(privseg_engine_breakdown(e, seg, 1772359300, PRIVSEG_LIT("country"), json, sizeof json, &got),
                  PRIVSEG_STATUS_OK);
    EXPECT(strstr(json, "\"label\":\"FR\"") != NULL && strstr(json, "\"k\":11") != NULL);
    EXPECT_STATUS(privseg_engine_breakdown(e, seg, 1772359300, PRIVSEG_LIT("allergy"), json, sizeof json, &got),
                  PRIVSEG_STATUS_SEGMENT_REFUSED);
    EXPECT_STATUS(privseg_engine_breakdown(e, seg, 1772359300, PRIVSEG_LIT("colour"), json, sizeof json, &got),
                  PRIVSEG_STATUS_SEGMENT_REFUSED);

    /* Exports: the secret, key version and format are checked first. */
    static const unsigned char secret[32] = "0123456789abcdef0123456789abcde";
    privseg_buffer *xbuf = NULL;
    privseg_str fields[1] = {s("country")};
    privseg_str health[1] = {s("allergy")};
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_JSONL, secret, 16, 1, &xbuf),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(last, "master_secret: master secret is too short: 16 bytes given, at least 32 required") == 0);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_JSONL, NULL, 0, 1, &xbuf),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_JSONL, secret, sizeof secret, 0, &xbuf),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0, 3, secret,
                                        sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 1,
                                        PRIVSEG_EXPORT_FORMAT_JSONL, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    /* A recipient the policy does not list is named as such, not reported
     * as a missing permission. */
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("ghost"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_JSONL, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_UNKNOWN_RECIPIENT);
    /* The mailer's agreement covers no data category: a segment selected by
     * country tells it something about a location, so even an export of
     * pseudonyms alone is refused (the agreement must cover what the
     * selection reads). */
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_CSV, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_EXPORT_REFUSED);
    /* The rest go through a segment that reads no attribute. */
    const privseg_segment *everyone = NULL;
    const char *all_text = "segment \"all\" for marketing.email";
    EXPECT_STATUS(privseg_segment_compile(p, all_text, strlen(all_text), &everyone, NULL), PRIVSEG_STATUS_OK);
    const privseg_segment *fr_seg = seg;
    seg = everyone;
    /* The mailer's agreement covers no data category, and health data is
     * not for this purpose. */
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), fields, 1,
                                        PRIVSEG_EXPORT_FORMAT_CSV, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_EXPORT_REFUSED);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), health, 1,
                                        PRIVSEG_EXPORT_FORMAT_CSV, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_SEGMENT_REFUSED);
    EXPECT(xbuf == NULL);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_CSV, secret, sizeof secret, 1, NULL),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    /* The export runs once, one audit entry; its size and copies cost nothing more. */
    uint64_t before_export = 0, after_export = 0, after_copies = 0;
    EXPECT_STATUS(privseg_engine_audit_len(e, &before_export), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_export(e, seg, 1772359300, PRIVSEG_LIT("mailer"), NULL, 0,
                                        PRIVSEG_EXPORT_FORMAT_CSV, secret, sizeof secret, 1, &xbuf),
                  PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_audit_len(e, &after_export), PRIVSEG_STATUS_OK);
    EXPECT(after_export == before_export + 1);
    size_t xlen = 0;
    EXPECT_STATUS(privseg_buffer_len(xbuf, &xlen), PRIVSEG_STATUS_OK);
    EXPECT(xlen == strlen("id\nv1:\n") + 64);
    EXPECT_STATUS(privseg_buffer_copy(xbuf, NULL, 0, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(got == xlen);
    EXPECT_STATUS(privseg_buffer_copy(xbuf, json, 8, &got), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(got == xlen);
    EXPECT_STATUS(privseg_buffer_copy(xbuf, json, sizeof json, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == xlen && strncmp(json, "id\nv1:", 6) == 0 && strstr(json, "c-1") == NULL);
    EXPECT_STATUS(privseg_buffer_copy(xbuf, json, sizeof json, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_buffer_len(NULL, &xlen), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_buffer_len(xbuf, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_audit_len(e, &after_copies), PRIVSEG_STATUS_OK);
    EXPECT(after_copies == after_export);
    privseg_buffer_free(xbuf);
    xbuf = NULL;
    seg = fr_seg;
    privseg_segment_free(everyone);

    /* The subject access report. */
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-1"), &seg, 1, 1772359300, json, sizeof json, &got),
                  PRIVSEG_STATUS_OK);
    EXPECT(strstr(json, "\"subject\":\"c-1\"") != NULL && strstr(json, "\"member\":true") != NULL);
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-1"), NULL, 0, 1772359300, json, sizeof json, &got),
                  PRIVSEG_STATUS_OK);
    EXPECT(strstr(json, "\"segments\":[]") != NULL);
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-1"), NULL, 1, 1772359300, json, sizeof json, &got),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    const privseg_segment *no_segs[1] = {NULL};
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-1"), no_segs, 1, 1772359300, json, sizeof json,
                                                &got),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-9"), NULL, 0, 1772359300, json, sizeof json, &got),
                  PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_engine_subject_report(e, PRIVSEG_LIT("c-1"), NULL, 0, 1772359300, json, 8, &got),
                  PRIVSEG_STATUS_BUFFER_TOO_SMALL);

    /* A segment compiled through the engine: the same checks, recorded. */
    const privseg_segment *compiled = NULL;
    const char *health_text = "segment \"x\" for marketing.email where allergy = true";
    privseg_error *cerr = NULL;
    EXPECT_STATUS(privseg_engine_compile(e, health_text, strlen(health_text), &compiled, &cerr),
                  PRIVSEG_STATUS_SEGMENT_REFUSED);
    EXPECT(compiled == NULL && cerr != NULL);
    privseg_error_free(cerr);
    EXPECT_STATUS(privseg_engine_compile(NULL, health_text, strlen(health_text), &compiled, NULL),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    const char *fr_text = "segment \"fr\" for marketing.email where country = \"FR\"";
    EXPECT_STATUS(privseg_engine_compile(e, fr_text, strlen(fr_text), &compiled, NULL), PRIVSEG_STATUS_OK);
    privseg_segment_free(compiled);

    /* Members read with another engine are refused. */
    privseg_engine *other = NULL;
    EXPECT_STATUS(privseg_engine_new(p, PRIVSEG_LIT(ACTOR), crm, 1, &other), PRIVSEG_STATUS_OK);
    privseg_buffer *leak = NULL;
    size_t cur = 0;
    char one[PRIVSEG_MAX_ID_LEN + 1];
    EXPECT_STATUS(privseg_members_ids(m, other, &leak), PRIVSEG_STATUS_FOREIGN_RESULT);
    EXPECT(leak == NULL);
    EXPECT_STATUS(privseg_last_error_message(last, sizeof last, &got), PRIVSEG_STATUS_OK);
    EXPECT(strstr(last, "another engine") != NULL);
    EXPECT_STATUS(privseg_members_next(m, other, &cur, one, sizeof one, &got), PRIVSEG_STATUS_FOREIGN_RESULT);
    EXPECT(cur == 0);
    /* Even an engine with the same subject ids (rows line up) reads nothing. */
    EXPECT_STATUS(privseg_engine_add_subject(other, PRIVSEG_LIT("x-1"), PRIVSEG_LIT("EU-FR"), NULL, 0),
                  PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_ids(m, other, &leak), PRIVSEG_STATUS_FOREIGN_RESULT);
    EXPECT(leak == NULL);
    privseg_engine_free(other);

    /* After the actor changes to one without member_ids (or without any
     * role), the members evaluated before can no longer be read: the
     * permission is checked again at each read, and the refusal recorded. */
    privseg_str no_roles[1] = {s("analyst")};
    uint64_t a0 = 0, a1 = 0;
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("ann"), no_roles, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_audit_len(e, &a0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_ids(m, e, &leak), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT(leak == NULL);
    EXPECT_STATUS(privseg_engine_audit_len(e, &a1), PRIVSEG_STATUS_OK);
    EXPECT(a1 == a0 + 1);
    EXPECT_STATUS(privseg_members_next(m, e, &cur, one, sizeof one, &got), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT(cur == 0);
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT("nobody"), NULL, 0), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_ids(m, e, &leak), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT_STATUS(privseg_members_next(m, e, &cur, one, sizeof one, &got), PRIVSEG_STATUS_ACCESS_DENIED);
    EXPECT(leak == NULL && cur == 0);
    /* Back to the actor that may: the same members read again. */
    EXPECT_STATUS(privseg_engine_set_actor(e, PRIVSEG_LIT(ACTOR), crm, 1), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_members_ids(m, e, &leak), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_buffer_len(leak, &got), PRIVSEG_STATUS_OK);
    EXPECT(got == strlen("c-1") + 1);
    privseg_buffer_free(leak);
    privseg_members_free(m);

    /* A segment of another policy is refused by the engine. */
    const privseg_policy *p2 = NULL;
    const char *p2json =
        "{\"controller\": {\"name\": \"Other\"}, \"categories\": [], \"attributes\": [],"
        " \"purposes\": [{\"key\": \"marketing.email\", \"basis\": \"consent\", \"accepted_notice_versions\": [\"v1\"]}]}";
    EXPECT_STATUS(privseg_policy_from_json(p2json, strlen(p2json), &p2, NULL), PRIVSEG_STATUS_OK);
    const privseg_segment *seg2 = NULL;
    const char *all = "segment \"all\" for marketing.email";
    EXPECT_STATUS(privseg_segment_compile(p2, all, strlen(all), &seg2, NULL), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_evaluate(e, seg2, 0, &m), PRIVSEG_STATUS_POLICY_MISMATCH);
    privseg_segment_free(seg2);
    privseg_policy_free(p2);

    /* Erasure. */
    EXPECT_STATUS(privseg_engine_erase(e, PRIVSEG_LIT("c-9")), PRIVSEG_STATUS_UNKNOWN_SUBJECT);
    EXPECT_STATUS(privseg_engine_erase(e, PRIVSEG_LIT("c-1")), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_engine_erase(e, PRIVSEG_LIT("c-1")), PRIVSEG_STATUS_UNKNOWN_SUBJECT);

    /* Times. */
    int64_t t = 0;
    EXPECT_STATUS(privseg_time_parse(PRIVSEG_LIT("2026-03-01T10:00:00Z"), &t), PRIVSEG_STATUS_OK);
    EXPECT(t == 1772359200);
    EXPECT_STATUS(privseg_time_parse(PRIVSEG_LIT("yesterday"), &t), PRIVSEG_STATUS_INVALID_TIME);
    EXPECT_STATUS(privseg_time_parse(PRIVSEG_LIT("2026-03-01T10:00:00Z"), NULL), PRIVSEG_STATUS_NULL_PARAMETER);

    privseg_segment_free(seg);
    privseg_engine_free(e);
}

int main(void) {
    versions();
    panics();
    frees_of_null();
    policies();
    builders();
    const privseg_policy *p = NULL;
    if (privseg_policy_from_json(POLICY, strlen(POLICY), &p, NULL) != PRIVSEG_STATUS_OK) {
        printf("FAIL: the test policy does not load\n");
        return 1;
    }
    const privseg_policy *q = privseg_policy_clone(p);
    privseg_policy_free(p);
    buffers(q);
    actors(q);
    limits(q);
    imports(q);
    engines(q);
    privseg_policy_free(q);
    return expect_summary("bad input");
}
