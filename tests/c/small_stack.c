/*
 * A CRM plugin's worker thread with a 64 KiB stack compiles the deepest
 * segment the language allows (64 levels of nesting) through the C API,
 * and one level deeper is refused with a status. Prints one line per failed
 * expectation and a summary; exits 1 if any expectation failed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privseg.h"

static const char POLICY[] =
    "{\"controller\": {\"name\": \"Acme\"},"
    " \"categories\": [{\"key\": \"user.location\"}, {\"key\": \"user.commerce\"}],"
    " \"attributes\": [{\"name\": \"country\", \"type\": \"categorical\", \"values\": [\"FR\", \"DE\"],"
    " \"category\": \"user.location\"},"
    " {\"name\": \"total_spend\", \"type\": \"integer\", \"min\": 0, \"max\": 1000000, \"category\": \"user.commerce\"}],"
    " \"purposes\": [{\"key\": \"marketing.email\", \"basis\": \"consent\","
    " \"categories\": [\"user.location\", \"user.commerce\"], \"accepted_notice_versions\": [\"v3\"]}],"
    " \"roles\": [{\"name\": \"crm\", \"subjects\": true, \"count\": [\"marketing\"],"
    " \"member_ids\": [\"marketing\"], \"explain\": [\"marketing\"]}]}";

struct job {
    const privseg_policy *policy;
    char *deepest;
    char *too_deep;
    int failed;
    int passed;
};

#define EXPECT(j, cond)                                          \
    do {                                                         \
        if (cond) {                                              \
            (j)->passed++;                                       \
        } else {                                                 \
            (j)->failed++;                                       \
            printf("FAIL line %d: %s\n", __LINE__, #cond);       \
        }                                                        \
    } while (0)

/* The segment of `levels` nested parentheses, each level another operator:
 * `(country = "FR" or (total_spend >= 1 and not (...)))`. The parser counts
 * each `(` and each `not`. */
static char *nested(int levels, int *depth) {
    size_t cap = 128 + (size_t)levels * 32;
    char *t = malloc(cap);
    strcpy(t, "segment \"deep\" for marketing.email where ");
    *depth = 0;
    for (int i = 0; i < levels; i++) {
        static const char *open[3] = {"(country = \"FR\" or ", "(total_spend >= 1 and ", "not ("};
        strcat(t, open[i % 3]);
        *depth += i % 3 == 2 ? 2 : 1;
    }
    strcat(t, "total_spend <= 1000");
    for (int i = 0; i < levels; i++) {
        strcat(t, ")");
    }
    return t;
}

static void *work(void *arg) {
    struct job *j = arg;
    const privseg_segment *seg = NULL;
    privseg_error *err = NULL;
    EXPECT(j, privseg_segment_compile(j->policy, j->deepest, strlen(j->deepest), &seg, &err) == PRIVSEG_STATUS_OK);
    EXPECT(j, seg != NULL && err == NULL);
    /* Through an engine, as its actor. */
    privseg_str crm[1] = {{"crm", 3}};
    privseg_engine *e = NULL;
    EXPECT(j, privseg_engine_new(j->policy, PRIVSEG_LIT("crm-sync"), crm, 1, &e) == PRIVSEG_STATUS_OK);
    const privseg_segment *again = NULL;
    EXPECT(j, privseg_engine_compile(e, j->deepest, strlen(j->deepest), &again, NULL) == PRIVSEG_STATUS_OK);
    privseg_segment_free(again);
    /* One level deeper: a syntax error with its position, no crash. */
    const privseg_segment *none = NULL;
    EXPECT(j, privseg_segment_compile(j->policy, j->too_deep, strlen(j->too_deep), &none, &err) ==
                  PRIVSEG_STATUS_SEGMENT_SYNTAX);
    EXPECT(j, none == NULL && err != NULL);
    char msg[4096];
    size_t n = 0;
    EXPECT(j, privseg_error_message(err, msg, sizeof msg, &n) == PRIVSEG_STATUS_OK);
    EXPECT(j, strstr(msg, "nesting deeper than 64 levels") != NULL);
    privseg_error_free(err);
    privseg_engine_free(e);
    privseg_segment_free(seg);
    return NULL;
}

int main(void) {
    struct job j;
    memset(&j, 0, sizeof j);
    if (privseg_policy_from_json(POLICY, strlen(POLICY), &j.policy, NULL) != PRIVSEG_STATUS_OK) {
        printf("FAIL: the test policy does not load\n");
        return 1;
    }
    /* The most levels whose depth is within 64, and one more. */
    int levels = 1, depth = 0;
    for (;; levels++) {
        char *t = nested(levels + 1, &depth);
        free(t);
        if (depth > 64) {
            break;
        }
    }
    j.deepest = nested(levels, &depth);
    EXPECT(&j, depth <= 64 && depth >= 63);
    j.too_deep = nested(levels + 1, &depth);
    EXPECT(&j, depth > 64);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    EXPECT(&j, pthread_attr_setstacksize(&attr, 64 * 1024) == 0);
    pthread_t t;
    EXPECT(&j, pthread_create(&t, &attr, work, &j) == 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    free(j.deepest);
    free(j.too_deep);
    privseg_policy_free(j.policy);
    printf("small stack: %d expectations met, %d not met\n", j.passed, j.failed);
    return j.failed == 0 ? 0 : 1;
}
