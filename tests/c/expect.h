/*
 * Expectations for the C test programs: each counts as met or not met, a
 * line is printed for each one not met, and expect_summary() prints the
 * counts and gives the program's exit status (1 if any was not met).
 * Included by one source file per program: the counters are its own.
 */
#ifndef PRIVSEG_TEST_EXPECT_H
#define PRIVSEG_TEST_EXPECT_H

#include <stdio.h>

#include "privseg.h"

static int passed = 0;
static int failed = 0;

#define EXPECT(cond)                                       \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
        } else {                                           \
            failed++;                                      \
            printf("FAIL line %d: %s\n", __LINE__, #cond); \
        }                                                  \
    } while (0)

#define EXPECT_STATUS(call, expected)                                         \
    do {                                                                      \
        privseg_status got_ = (call);                                         \
        if (got_ == (privseg_status)(expected)) {                             \
            passed++;                                                         \
        } else {                                                              \
            failed++;                                                         \
            printf("FAIL line %d: %s gave %s, expected %s\n", __LINE__, #call, \
                   privseg_status_name(got_), privseg_status_name(expected)); \
        }                                                                     \
    } while (0)

/* Prints "<program>: N expectations met, M not met" and returns the exit
 * status: 0 when every expectation was met, else 1. */
static int expect_summary(const char *program) {
    printf("%s: %d expectations met, %d not met\n", program, passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
