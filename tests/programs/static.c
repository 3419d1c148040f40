/* A statically linked program (no PT_INTERP: no dynamic linker, so LD_PRELOAD means nothing to it) for the
 * spawn_preload_problem tests. Run, it waits for SIGTERM or SIGINT and exits 0. */
#include <signal.h>
#include <unistd.h>

int main(void) {
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
	return 0;
}
