/*
 * Decoded consent signals through the C API: a handle with field accessors
 * for TCF, GPP and US Privacy strings, and a status for every bad call.
 * Prints one line per failed expectation and a summary; exits 1 if any
 * expectation failed. Run under valgrind and ASan by tests/ffi_programs.rs.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "expect.h"
#include "privseg.h"

/* Purposes 1-4 consented, 2 and 7 under legitimate interest, special
 * feature 1, vendors 2 and 10 with consent, none with legitimate interest. */
static const char TC[] = "CP1R2oAP1R2oAAHABBENBkFoAPAAAEIAAAYgAFEBAAAAAA.IAFQAYAAgAUA";
/* Sections 2 (that TC string) and 6 (US Privacy 1YYN). */
static const char GPP[] = "DBACNYA~CP1R2oAP1R2oAAHABBENBkFoAPAAAEIAAAYgAFEBAAAAAA.IAFQAYAAgAUA~1YYN";

static int same(const uint16_t *got, size_t n, const uint16_t *want, size_t m) {
    return n == m && (n == 0 || memcmp(got, want, n * sizeof *got) == 0);
}

/* The TCF lists, read the same from a TC string and from a GPP string. */
static void tcf_fields(const privseg_signal *sig) {
    uint16_t ids[16];
    size_t n = 99;
    static const uint16_t consents[] = {1, 2, 3, 4};
    static const uint16_t li[] = {2, 7};
    static const uint16_t features[] = {1};
    static const uint16_t vendors[] = {2, 10};
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, ids, 16, &n), PRIVSEG_STATUS_OK);
    EXPECT(same(ids, n, consents, 4));
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_LEGITIMATE_INTEREST, ids, 16, &n),
                  PRIVSEG_STATUS_OK);
    EXPECT(same(ids, n, li, 2));
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_SPECIAL_FEATURE_OPT_INS, ids, 16, &n),
                  PRIVSEG_STATUS_OK);
    EXPECT(same(ids, n, features, 1));
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_VENDOR_CONSENTS, ids, 16, &n), PRIVSEG_STATUS_OK);
    EXPECT(same(ids, n, vendors, 2));
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_VENDOR_LEGITIMATE_INTERESTS, ids, 16, &n),
                  PRIVSEG_STATUS_OK);
    EXPECT(n == 0);
    /* The count alone, then an array too small: nothing copied. */
    n = 0;
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, NULL, 0, &n),
                  PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(n == 4);
    uint16_t two[2] = {77, 77};
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, two, 2, &n),
                  PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(n == 4 && two[0] == 77 && two[1] == 77);
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, 99, ids, 16, &n), PRIVSEG_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, NULL, 3, &n),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, ids, 16, NULL),
                  PRIVSEG_STATUS_NULL_PARAMETER);
}

static void tcf(void) {
    privseg_signal *sig = NULL;
    EXPECT_STATUS(privseg_signal_decode_handle(TC, strlen(TC), &sig), PRIVSEG_STATUS_OK);
    uint32_t format = 0;
    EXPECT_STATUS(privseg_signal_format(sig, &format), PRIVSEG_STATUS_OK);
    EXPECT(format == PRIVSEG_SIGNAL_TCF);
    tcf_fields(sig);
    /* No US Privacy fields, no GPP sections. */
    privseg_usp usp;
    EXPECT_STATUS(privseg_signal_usp(sig, &usp), PRIVSEG_STATUS_SIGNAL_ABSENT);
    size_t n = 0;
    uint16_t ids[4];
    EXPECT_STATUS(privseg_signal_gpp_section_ids(sig, ids, 4, &n), PRIVSEG_STATUS_SIGNAL_ABSENT);
    /* The handle's JSON is that of privseg_signal_decode. */
    char a[4096], b[4096];
    size_t na = 0, nb = 0;
    EXPECT_STATUS(privseg_signal_json(sig, a, sizeof a, &na), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_signal_decode(TC, strlen(TC), b, sizeof b, &nb), PRIVSEG_STATUS_OK);
    EXPECT(na == nb && strcmp(a, b) == 0);
    EXPECT_STATUS(privseg_signal_json(sig, a, 8, &na), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(na == nb);
    privseg_signal_free(sig);
}

static void gpp(void) {
    privseg_signal *sig = NULL;
    EXPECT_STATUS(privseg_signal_decode_handle(GPP, strlen(GPP), &sig), PRIVSEG_STATUS_OK);
    uint32_t format = 0;
    EXPECT_STATUS(privseg_signal_format(sig, &format), PRIVSEG_STATUS_OK);
    EXPECT(format == PRIVSEG_SIGNAL_GPP);
    uint16_t ids[8];
    size_t n = 0;
    static const uint16_t sections[] = {2, 6};
    EXPECT_STATUS(privseg_signal_gpp_section_ids(sig, ids, 8, &n), PRIVSEG_STATUS_OK);
    EXPECT(same(ids, n, sections, 2));
    EXPECT_STATUS(privseg_signal_gpp_section_ids(sig, NULL, 0, &n), PRIVSEG_STATUS_BUFFER_TOO_SMALL);
    EXPECT(n == 2);
    /* Each section as JSON; the TCF section's fields through the accessors. */
    char json[4096];
    size_t w = 0;
    EXPECT_STATUS(privseg_signal_gpp_section(sig, 6, json, sizeof json, &w), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(json, "{\"type\":\"usp\",\"version\":1,\"notice\":\"Y\",\"optOutSale\":\"Y\",\"lspaCovered\":\"N\"}") ==
           0);
    EXPECT_STATUS(privseg_signal_gpp_section(sig, 2, json, sizeof json, &w), PRIVSEG_STATUS_OK);
    EXPECT(strncmp(json, "{\"type\":\"tcf\"", 13) == 0 && strstr(json, "\"purposeConsents\":[1,2,3,4]") != NULL);
    EXPECT_STATUS(privseg_signal_gpp_section(sig, 7, json, sizeof json, &w), PRIVSEG_STATUS_SIGNAL_ABSENT);
    char msg[256];
    EXPECT_STATUS(privseg_last_error_message(msg, sizeof msg, &w), PRIVSEG_STATUS_OK);
    EXPECT(strcmp(msg, "this GPP string has no section 7") == 0);
    tcf_fields(sig);
    privseg_usp usp;
    memset(&usp, 0, sizeof usp);
    EXPECT_STATUS(privseg_signal_usp(sig, &usp), PRIVSEG_STATUS_OK);
    EXPECT(usp.version == 1 && usp.notice == 'Y' && usp.opt_out_sale == 'Y' && usp.lspa_covered == 'N');
    privseg_signal_free(sig);

    /* A GPP string without a TCF section. */
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT("DBABTA~1YN-"), &sig), PRIVSEG_STATUS_OK);
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, ids, 8, &n),
                  PRIVSEG_STATUS_SIGNAL_ABSENT);
    EXPECT_STATUS(privseg_signal_usp(sig, &usp), PRIVSEG_STATUS_OK);
    EXPECT(usp.notice == 'Y' && usp.opt_out_sale == 'N' && usp.lspa_covered == '-');
    privseg_signal_free(sig);
}

static void usp(void) {
    privseg_signal *sig = NULL;
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT(" 1nyN "), &sig), PRIVSEG_STATUS_OK);
    uint32_t format = 0;
    EXPECT_STATUS(privseg_signal_format(sig, &format), PRIVSEG_STATUS_OK);
    EXPECT(format == PRIVSEG_SIGNAL_USP);
    privseg_usp u;
    EXPECT_STATUS(privseg_signal_usp(sig, &u), PRIVSEG_STATUS_OK);
    EXPECT(u.notice == 'N' && u.opt_out_sale == 'Y' && u.lspa_covered == 'N');
    uint16_t ids[4];
    size_t n = 0;
    EXPECT_STATUS(privseg_signal_tcf_ids(sig, PRIVSEG_TCF_LIST_VENDOR_CONSENTS, ids, 4, &n),
                  PRIVSEG_STATUS_SIGNAL_ABSENT);
    EXPECT_STATUS(privseg_signal_usp(sig, NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_signal_free(sig);
}

static void bad_input(void) {
    privseg_signal *sig = NULL;
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT("XYZ"), &sig), PRIVSEG_STATUS_SIGNAL_INVALID);
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT("CPXxRfAPXxRfAAfKABENB"), &sig),
                  PRIVSEG_STATUS_SIGNAL_INVALID);
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT(""), &sig), PRIVSEG_STATUS_SIGNAL_INVALID);
    EXPECT_STATUS(privseg_signal_decode_handle("1\xff", 2, &sig), PRIVSEG_STATUS_INVALID_UTF8);
    EXPECT_STATUS(privseg_signal_decode_handle(NULL, 4, &sig), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_signal_decode_handle(PRIVSEG_LIT("1YNN"), NULL), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT(sig == NULL);
    uint32_t format = 0;
    EXPECT_STATUS(privseg_signal_format(NULL, &format), PRIVSEG_STATUS_NULL_PARAMETER);
    size_t n = 0;
    EXPECT_STATUS(privseg_signal_tcf_ids(NULL, PRIVSEG_TCF_LIST_PURPOSES_CONSENT, NULL, 0, &n),
                  PRIVSEG_STATUS_NULL_PARAMETER);
    char buf[8];
    EXPECT_STATUS(privseg_signal_json(NULL, buf, sizeof buf, &n), PRIVSEG_STATUS_NULL_PARAMETER);
    EXPECT_STATUS(privseg_signal_gpp_section(NULL, 2, buf, sizeof buf, &n), PRIVSEG_STATUS_NULL_PARAMETER);
    privseg_signal_free(NULL);
    EXPECT(strcmp(privseg_status_name(PRIVSEG_STATUS_SIGNAL_ABSENT), "PRIVSEG_STATUS_SIGNAL_ABSENT") == 0);
}

int main(void) {
    tcf();
    gpp();
    usp();
    bad_input();
    return expect_summary("signals");
}
