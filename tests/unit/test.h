/* A tiny TAP producer for the unit tests: each CHECK is one test point, so meson shows exactly what failed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_count, test_failed;

#define CHECK(cond, ...)                                                                                               \
	do {                                                                                                           \
		test_count++;                                                                                          \
		if (cond)                                                                                              \
			printf("ok %d - ", test_count);                                                                \
		else {                                                                                                 \
			test_failed++;                                                                                 \
			printf("not ok %d - %s:%d: ", test_count, __FILE__, __LINE__);                                 \
		}                                                                                                      \
		printf(__VA_ARGS__);                                                                                   \
		printf("\n");                                                                                          \
	} while (0)

#define CHECK_STREQ(a, b, ...)                                                                                         \
	do {                                                                                                           \
		const char *_a = (a), *_b = (b);                                                                       \
		bool _eq = _a && _b && strcmp(_a, _b) == 0;                                                            \
		CHECK(_eq, __VA_ARGS__);                                                                               \
		if (!_eq)                                                                                              \
			printf("#   got '%s', want '%s'\n", _a ? _a : "(null)", _b ? _b : "(null)");                   \
	} while (0)

static inline int test_done(void) {
	printf("1..%d\n", test_count);
	return test_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
