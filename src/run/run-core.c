/* What every file of run/ shares about struct run (run-core.h), below them all: the blocked signals, a control
 * client's answer, the strings a run owns for `baton upgrade`, and a turn of the state machine (an event in, its
 * outbox delivered, the terminal handed on). Calls nothing of run/. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "run-core.h"
#include "status.h"
#include "supervisor.h"
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

/* ---- a turn of the state machine ---- */

/* The supervisor's outbox: each ended reload is answered to the clients waiting for its number. */
static void deliver_replies(struct run *r) {
	struct reload_reply *replies = supervisor_take_replies(&r->sup);
	for (struct reload_reply *rr = replies; rr; rr = rr->next) {
		_cleanup_free_ char *json = NULL;
		for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
			next = cl->next;
			if (!cl->has_request || cl->request != CONTROL_RELOAD || cl->reload_seq != rr->seq)
				continue;
			if (!json)
				json = status_reload_reply(rr);
			run_client_reply(r, cl, json);
		}
	}
	reload_replies_free(replies);
}

/* With the terminal: its foreground belongs to the current generation's process group, or to baton's own while
 * there is none (restarting, stopping), so that Ctrl-C reaches whoever runs. tcsetpgrp() from a background group is
 * allowed because baton blocks SIGTTOU. */
void run_sync_terminal(struct run *r) {
	if (!r->sup.terminal)
		return;
	struct generation *g = r->sup.current;
	pid_t want = g && g->pid > 0 && r->sup.state != SUP_DONE ? g->pgid : r->own_pgrp;
	if (want == r->foreground)
		return;
	if (tcsetpgrp(STDIN_FILENO, want) < 0) {
		/* The terminal went away (hung up), or the group is gone already: nothing to hand over. A program that
		 * took the foreground itself at its spawn and was gone (Ctrl-C; its keeper reaped it) before this ran
		 * still held it: its end is the terminal's. */
		log_debug_errno(errno, "Failed to give the terminal's foreground to process group %d", (int)want);
		if (tcgetpgrp(STDIN_FILENO) == want)
			r->foreground = want;
		return;
	}
	r->foreground = want;
}

/* After each turn of the state machine: its outbox is delivered, and the terminal follows the current generation. */
static void after_dispatch(struct run *r) {
	deliver_replies(r);
	run_sync_terminal(r);
}

/* Every event reaches the state machine through here (what it queued runs too). */
void run_dispatch(struct run *r, const struct event *ev) {
	supervisor_dispatch(&r->sup, ev, now_usec());
	after_dispatch(r);
}

/* g ended: what is left of its process group is stopped and waited for; the state machine hears EV_EXITED. */
void run_generation_ended(struct run *r, struct generation *g, int wait_status, bool interrupted) {
	uint64_t now = now_usec();
	remnant_track(&r->remnants, g, r->sup.config, now);
	supervisor_generation_ended(&r->sup, g, wait_status, interrupted, now);
	after_dispatch(r);
}

void run_ready(struct run *r, struct generation *g, const char *how) {
	log_info("generation %u (pid %d): %s", g->id, (int)g->pid, how);
	run_dispatch(r, &(struct event){.type = EV_READY, .gen = g});
}
