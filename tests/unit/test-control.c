#include "test.h"
#include <stdbool.h>
int main(void) {
	return test_done();
}
