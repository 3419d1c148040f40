/* `baton run`'s children and its signals (run-children.h): every child that ends is reaped here, by baton or reported
 * by a generation's keeper, and becomes its generation's end, a readiness probe's outcome or an orphan's quiet
 * reaping; a child stopped by job control stops baton too; what the signalfd says is a stop, a reload or the
 * program's to have. A cgroup that emptied is a daemon gone. Calls run-core.c and run-upgrade.c (an upgrade's check
 * is a child too). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "evloop.h"
#include "keeper.h"
#include "log.h"
#include "proc.h"
#include "readiness.h"
#include "run-children.h"
#include "run-core.h"
#include "run-upgrade.h"
#include "supervisor.h"
#include "util.h"

/* A generation waiting for its daemon (its launcher exited) whose cgroup is empty has no daemon left: it fails now,
 * as at its readiness timeout, instead of waiting for that. */
static void daemon_gone(struct generation *g) {
	/* Read first, whatever the state: reading is what re-arms EPOLLPRI, which would otherwise fire forever. */
	if (!generation_cgroup_empty(g) || g->state != GEN_STARTING || g->pid > 0)
		return;
	log_info("generation %u: its cgroup is empty: no daemon is left to become ready", g->id);
	g->deadline_usec = now_usec();
}

/* A child stopped. When it is the current generation's program, stopped by job control (Ctrl-Z, or reading or
 * writing the terminal from the background) while baton holds the terminal, baton stops too, so that the shell sees
 * its job stopped; once continued (fg), the program gets the terminal back and continues. As PID 1 there is no shell
 * to take over (and PID 1 cannot stop itself): the program is continued at once, as PID 1 ignores SIGTSTP itself. */
static void child_stopped(struct run *r, pid_t pid, int sig) {
	struct generation *g = r->sup.current;
	bool job_control = sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
	if (!g || g->pid != pid || !job_control || !r->sup.terminal) {
		log_debug("process %d was stopped by %s", (int)pid, strempty(signal_name(sig)));
		return;
	}
	if (getpid() == 1) {
		log_info("generation %u (pid %d) was stopped by %s; as PID 1 baton continues it", g->id, (int)pid,
			 strempty(signal_name(sig)));
		(void)kill(-g->pgid, SIGCONT);
		return;
	}
	log_info("generation %u (pid %d) was stopped by %s: stopping baton too", g->id, (int)pid,
		 strempty(signal_name(sig)));
	if (tcsetpgrp(STDIN_FILENO, r->own_pgrp) == 0)
		r->foreground = r->own_pgrp;
	(void)kill(getpid(), SIGSTOP);
	/* Continued: by fg (the shell gave baton's group the terminal), or by bg (it did not). */
	log_info("continued: continuing generation %u (pid %d)", g->id, (int)pid);
	if (tcgetpgrp(STDIN_FILENO) == r->own_pgrp)
		r->foreground = 0; /* run_sync_terminal hands it to the program */
	run_sync_terminal(r);
	(void)kill(-g->pgid, SIGCONT);
}

/* g's main process ended (reaped by baton, or by g's keeper): the generation ends, or a daemon's launcher exited. */
static void main_ended(struct run *r, struct generation *g, int status) {
	struct supervisor *s = &r->sup;
	if (readiness_launcher_exited(g, status, now_usec())) {
		/* Its cgroup emptied before the launcher was reaped: no daemon is left to wait for. */
		daemon_gone(g);
		return;
	}
	/* Ctrl-C or Ctrl-\ at the terminal the program held ends it, and baton with it. */
	bool interrupted = s->terminal && g == s->current && r->foreground == g->pgid && WIFSIGNALED(status) &&
			   (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGQUIT);
	run_generation_ended(r, g, status, interrupted);
}

/* The wait statuses generation id's keeper reported: its main process's count as baton's own waitpid()'s would; the
 * other processes it reaped are its business. Only the keeper's own generation is looked at: a pid it reaped may
 * already be another's. all: until the socket is empty (the keeper was reaped); otherwise a bounded batch. */
void run_keeper_reports(struct run *r, unsigned id, bool all) {
	for (unsigned i = 0; all || i < 256; i++) {
		int *fd = generation_keeper_fd(r->sup.generations, r->remnants, id);
		pid_t pid;
		int status, k = fd ? keeper_read(*fd, &pid, &status) : 0;
		if (k == 0)
			return;
		if (k < 0) {
			/* The keeper closed its end: it exited, and SIGCHLD says so. */
			evloop_remove(&r->loop, *fd);
			close(*fd);
			*fd = -1;
			return;
		}
		struct generation *g = generation_by_id(r->sup.generations, id);
		if (!g || g->pid != pid || WIFCONTINUED(status)) {
			log_debug("generation %u's keeper reaped process %d", id, (int)pid);
			continue;
		}
		if (WIFSTOPPED(status))
			child_stopped(r, pid, WSTOPSIG(status));
		else
			main_ended(r, g, status);
	}
}

/* pid was a keeper: what it reported first, then its end. A generation's keeper ends with the last of its
 * processes (the main process first); should it die before (killed by someone), what it held is baton's again, as
 * orphans. */
static bool keeper_reaped(struct run *r, pid_t pid, int status) {
	struct generation *g = r->sup.generations;
	struct remnant *rm = r->remnants;
	for (; g && g->keeper != pid; g = g->next)
		;
	for (; rm && !(rm->kept && rm->keeper == pid); rm = rm->next)
		;
	if (!g && !rm)
		return false;
	/* What it reported may end its generation (freed, or its keeper moved to a remnant): looked up again. */
	run_keeper_reports(r, g ? g->id : rm->id, true);
	for (g = r->sup.generations; g && g->keeper != pid; g = g->next)
		;
	if (g && g->pid > 0)
		log_warning("generation %u: its keeper (pid %d) died; its processes are baton's orphans now", g->id,
			    (int)pid);
	else if (g && g->state == GEN_STARTING) {
		log_info("generation %u: nothing is left under its keeper: no daemon is left to become ready", g->id);
		g->deadline_usec = now_usec();
	}
	for (rm = r->remnants; rm && !(rm->kept && rm->keeper == pid); rm = rm->next)
		;
	if (rm && WIFSIGNALED(status))
		log_warning("generation %u: its keeper (pid %d) was killed; what is left of it is baton's orphans now",
			    rm->id, (int)pid);
	generations_keeper_gone(r->sup.generations, r->remnants, pid, WIFSIGNALED(status));
	return true;
}

/* A main process that MAINPID= named and that is not baton's child (its parent, the old main process, still lives)
 * is never reaped by baton: its pidfd says it ended, and its generation ends with what /proc still tells of it. */
static void main_ended_elsewhere(struct run *r) {
	int status;
	for (bool again = true; again;) {
		again = false;
		for (struct generation *g = r->sup.generations; g && r->sup.state != SUP_DONE; g = g->next)
			if (generation_main_ended_elsewhere(g, &status)) {
				log_debug("generation %u: its main process %d, not baton's child, ended", g->id,
					  (int)g->pid);
				run_generation_ended(r, g, status, false);
				again = true; /* the list changed */
				break;
			}
	}
}

/* Reaps every child that has exited: generations end (EV_EXITED); a readiness probe counts for its generation; a
 * keeper's end is its generation's; anything else is an orphan that was reparented to baton (the child subreaper) and
 * is only reaped, so that no zombie stays behind. Several SIGCHLDs can arrive as one, so this loops until nothing is
 * left. */
void run_reap_children(struct run *r) {
	struct supervisor *s = &r->sup;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | WUNTRACED | WCONTINUED);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		if (WIFSTOPPED(status)) {
			child_stopped(r, pid, WSTOPSIG(status));
			continue;
		}
		if (WIFCONTINUED(status))
			continue;
		if (run_upgrade_reaped(r, pid, status) || keeper_reaped(r, pid, status))
			continue;

		/* Without cgroups, what its end left to baton belongs to its generation: adopted before anything is
		 * freed. */
		generations_adopt(s->generations, r->remnants, pid);
		uint64_t now = now_usec();
		struct generation *g;
		char buf[64], why[96];
		switch (readiness_probe_reaped(s->generations, pid, status, now, &g)) {
		case PROBE_READY:
			run_ready(r, g, "readiness.command exited 0");
			continue;
		case PROBE_FAILED:
			snprintf(why, sizeof(why), "failed reload.confirm-command (it %s)",
				 wait_status_describe(status, buf));
			run_dispatch(r, &(struct event){.type = EV_UNHEALTHY, .gen = g, .why = why});
			continue;
		case PROBE_NOTHING:
			continue;
		case PROBE_NOT_A_PROBE:
			break;
		}
		g = generation_by_pid(s->generations, pid);
		if (!g) {
			log_debug("reaped process %d, which %s", (int)pid, wait_status_describe(status, buf));
			continue;
		}
		main_ended(r, g, status);
	}
	main_ended_elsewhere(r);
	remnants_reaped(&r->remnants);
}

static void forward_signal(struct run *r, int sig) {
	struct generation *g = r->sup.current;
	if (!g) {
		log_debug("no generation to forward %s to", strempty(signal_name(sig)));
		return;
	}
	log_debug("forwarding %s to generation %u (pid %d)", strempty(signal_name(sig)), g->id, (int)g->pid);
	/* To the main process: the program decides what its workers get (nginx's master passes signals on; a shell's
	 * children would get them twice). SIGCONT alone goes to the whole group: whatever was stopped must run again.
	 */
	int k = sig == SIGCONT ? (kill(-g->pgid, sig) < 0 ? -errno : 0) : generation_signal(g, sig);
	if (k < 0 && k != -ESRCH)
		log_warning_errno(k, "Failed to forward %s, ignoring", strempty(signal_name(sig)));
}

void run_handle_signals(struct run *r) {
	struct signalfd_siginfo si;
	/* Also once the state machine is done: while what is left of a generation is waited for, SIGCHLD says so. */
	while (evloop_next_signal(&r->loop, &si) > 0) {
		int sig = (int)si.ssi_signo;
		char why[64];
		snprintf(why, sizeof(why), "received %s from pid %u", strempty(signal_name(sig)), si.ssi_pid);
		switch (sig) {
		case SIGCHLD:
			run_reap_children(r);
			break;
		case SIGTERM:
		case SIGINT:
			run_dispatch(r, &(struct event){.type = EV_STOP_REQUEST, .why = why});
			break;
		case SIGHUP:
			run_dispatch(r, &(struct event){.type = EV_RELOAD_REQUEST, .why = why});
			break;
		case SIGPIPE:
			/* baton's own writes to a closed pipe or socket fail with EPIPE, which is handled where they
			 * are made; only a SIGPIPE that someone sent is the program's. */
			if ((pid_t)si.ssi_pid != getpid())
				forward_signal(r, sig);
			break;
		default:
			/* SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT, SIGTSTP, SIGCONT, real-time signals... (baton(1)
			 * SIGNALS): the program's. */
			forward_signal(r, sig);
			break;
		}
	}
}

/* A cgroup.events changed: a generation whose daemon is not known (its launcher exited) ends when its cgroup is
 * empty, and so does what is left of an ended one. */
void run_cgroup_event(struct run *r, unsigned id) {
	struct generation *g = generation_by_id(r->sup.generations, id);
	if (g)
		daemon_gone(g);
	remnants_cgroup_event(&r->remnants, id);
}
