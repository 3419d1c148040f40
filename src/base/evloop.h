/* The event loop's registry, the bottom layer of the supervisor: one epoll set, a signalfd for the signals the caller
 * blocked, and one timerfd armed for a single absolute deadline. Callers register fds under a 64-bit tag of their
 * choosing and get the tags back from evloop_wait(); what a tag means, and what to do about it, is theirs. Nothing
 * here knows about generations or policy, and nothing here calls up. Does not log. */
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

/* Tags of the loop's own fds; callers' tags must differ from these. */
enum {
	EVLOOP_TAG_SIGNAL = 1,
	EVLOOP_TAG_TIMER = 2,
	_EVLOOP_TAG_MAX,
};

struct evloop {
	int epoll_fd;
	int signal_fd;
	int timer_fd;
	uint64_t armed_usec; /* what timer_fd is set to (CLOCK_MONOTONIC µs); USEC_INFINITY when disarmed */
};

#define EVLOOP_INIT                                                                                                    \
	{ .epoll_fd = -1, .signal_fd = -1, .timer_fd = -1, .armed_usec = UINT64_MAX }

/* Opens the epoll set, a signalfd for signals (which the caller has blocked) and the timerfd, all close-on-exec.
 * Returns 0 or negative errno (what is open stays for evloop_close). */
int evloop_open(struct evloop *l, const sigset_t *signals);
void evloop_close(struct evloop *l);

int evloop_add(struct evloop *l, int fd, uint32_t events, uint64_t tag);
int evloop_modify(struct evloop *l, int fd, uint32_t events, uint64_t tag);
/* Takes fd out of the set (closing an fd takes it out too). */
void evloop_remove(struct evloop *l, int fd);

/* Arms the timer for deadline_usec (CLOCK_MONOTONIC µs, absolute; a deadline already passed fires at once), or
 * disarms it for UINT64_MAX. Nothing happens when it is armed for that deadline already. */
int evloop_arm(struct evloop *l, uint64_t deadline_usec);
/* After an EVLOOP_TAG_TIMER event: takes the expiry. The timer is disarmed until evloop_arm() again. */
void evloop_timer_expired(struct evloop *l);
/* After an EVLOOP_TAG_SIGNAL event: reads one pending signal. Returns 1 with *ret set, 0 when none is left. */
int evloop_next_signal(struct evloop *l, struct signalfd_siginfo *ret);

/* Waits for events (forever: the timer bounds it when armed). Returns their number, 0 after EINTR, or negative
 * errno. */
int evloop_wait(struct evloop *l, struct epoll_event *events, int max);
