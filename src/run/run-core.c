/* What every file of run/ shares about struct run (run-internal.h), below them all: the blocked signals, a control
 * client's answer, and the strings a run owns for `baton upgrade`. Calls nothing of run/. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "run-internal.h"
#include "run.h"
#include "util.h"

/* Every signal is baton's to read from its signalfd (baton(1) SIGNALS says what each one does): blocked, none of
 * them can kill or stop baton by its default action, and as PID 1 none is dropped by the kernel (a blocked signal is
 * never discarded as ignored). SIGKILL and SIGSTOP cannot be blocked; glibc keeps 32 and 33 for itself. A fault
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL) in baton itself still kills it: the kernel forces those through. */
int run_block_signals(void) {
	sigset_t mask;
	sigfillset(&mask);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return 0;
}

void run_client_reply(struct run *r, struct control_client *cl, const char *json) {
	int k = json ? control_client_reply(cl, json) : control_client_reply_error(cl, "out of memory");
	if (k < 0)
		log_debug_errno(k, "Failed to reply to control client %u, ignoring", cl->id);
	control_client_close(&r->control, cl);
}

void run_free_strings(struct run *r) {
	free(r->binary);
	free(r->previous_version);
	free(r->own_config_path);
	strv_free(r->own_listens);
	strv_free(r->own_sets);
	strv_free(r->own_command);
}
