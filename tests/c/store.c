/*
 * A durable engine through the C API: create in a fresh directory, add
 * subjects, close, reopen with the same key and read them back; a wrong or
 * short key, a second create and NULL arguments give statuses. Prints one
 * line per failed expectation and a summary; exits 1 if any failed.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "expect.h"
#include "privseg.h"

static const char POLICY[] =
    "{\"controller\": {\"name\": \"Acme\"},"
    " \"categories\": [{\"key\": \"user.location\"}],"
    " \"attributes\": [{\"name\": \"country\", \"type\": \"categorical\", \"values\": [\"FR\", \"DE\"],"
    " \"category\": \"user.location\"}],"
    " \"purposes\": [{\"key\": \"marketing.email\", \"basis\": \"consent\","
    " \"categories\": [\"user.location\"], \"accepted_notice_versions\": [\"v3\"]}],"
    " \"roles\": [{\"name\": \"crm\", \"subjects\": true, \"count\": [\"marketing\"],"
    " \"member_ids\": [\"marketing\"], \"explain\": [\"marketing\"]}]}";

int main(void) {
    const privseg_policy *policy = NULL;
    if (privseg_policy_from_json(POLICY, strlen(POLICY), &policy, NULL) != PRIVSEG_STATUS_OK) {
        printf("FAIL: the test policy does not load\n");
        return 1;
    }
    char dir[] = "/tmp/privseg-c-store-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/s", dir);
    unsigned char key[32], wrong[32];
    memset(key, 0x5a, sizeof key);
    memset(wrong, 0x33, sizeof wrong);
    privseg_str crm[1] = {{"crm", 3}};

    privseg_engine *e = NULL;
    EXPECT(privseg_engine_create(policy, path, strlen(path), key, 31, PRIVSEG_LIT("crm-sync"), crm, 1, &e) ==
           PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT(privseg_engine_create(policy, path, strlen(path), NULL, 32, PRIVSEG_LIT("crm-sync"), crm, 1, &e) ==
           PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT(e == NULL);
    EXPECT(privseg_engine_create(policy, path, strlen(path), key, 32, PRIVSEG_LIT("crm-sync"), crm, 1, &e) ==
           PRIVSEG_STATUS_OK);
    EXPECT(privseg_engine_add_subject(e, PRIVSEG_LIT("c-1"), PRIVSEG_LIT("EU-FR"), PRIVSEG_LIT("1980-01-02")) ==
           PRIVSEG_STATUS_OK);
    EXPECT(privseg_engine_add_subject(e, PRIVSEG_LIT("c-2"), PRIVSEG_LIT("EU-FR"), NULL, 0) == PRIVSEG_STATUS_OK);
    /* A checkpoint writes the snapshot the next open reads. */
    char snap[300];
    snprintf(snap, sizeof snap, "%s/snapshot.bin", path);
    EXPECT(access(snap, F_OK) != 0);
    EXPECT(privseg_engine_checkpoint(e) == PRIVSEG_STATUS_OK);
    EXPECT(access(snap, F_OK) == 0);
    EXPECT(privseg_engine_checkpoint(NULL) == PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_engine_free(e);

    /* A second create on the same directory is refused. */
    privseg_engine *again = NULL;
    EXPECT(privseg_engine_create(policy, path, strlen(path), key, 32, PRIVSEG_LIT("crm-sync"), crm, 1, &again) !=
           PRIVSEG_STATUS_OK);
    EXPECT(again == NULL);
    /* The wrong key opens nothing. */
    EXPECT(privseg_engine_open(policy, path, strlen(path), wrong, 32, PRIVSEG_LIT("crm-sync"), crm, 1, &again) !=
           PRIVSEG_STATUS_OK);
    EXPECT(again == NULL);

    /* Reopened with its key: both subjects are there. */
    privseg_engine *r = NULL;
    EXPECT(privseg_engine_open(policy, path, strlen(path), key, 32, PRIVSEG_LIT("crm-sync"), crm, 1, &r) ==
           PRIVSEG_STATUS_OK);
    size_t n = 0;
    EXPECT(r != NULL && privseg_engine_subject_count(r, &n) == PRIVSEG_STATUS_OK && n == 2);
    EXPECT(privseg_engine_add_subject(r, PRIVSEG_LIT("c-2"), PRIVSEG_LIT("EU-FR"), NULL, 0) ==
           PRIVSEG_STATUS_DUPLICATE_SUBJECT);
    privseg_engine_free(r);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        printf("warning: could not remove %s\n", dir);
    }
    privseg_policy_free(policy);
    return expect_summary("store");
}
