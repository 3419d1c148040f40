/* The event loop's registry (evloop.h). */
#include "evloop.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int evloop_open(struct evloop *l, const sigset_t *signals) {
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epoll_fd < 0)
		return -errno;
	l->signal_fd = signalfd(-1, signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->signal_fd < 0)
		return -errno;
	l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->timer_fd < 0)
		return -errno;
	l->armed_usec = USEC_INFINITY;
	int r = evloop_add(l, l->signal_fd, EPOLLIN, EVLOOP_TAG_SIGNAL);
	if (r < 0)
		return r;
	return evloop_add(l, l->timer_fd, EPOLLIN, EVLOOP_TAG_TIMER);
}

void evloop_close(struct evloop *l) {
	int *fds[] = {&l->timer_fd, &l->signal_fd, &l->epoll_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

int evloop_add(struct evloop *l, int fd, uint32_t events, uint64_t tag) {
	struct epoll_event ev = {.events = events, .data.u64 = tag};
	return epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_modify(struct evloop *l, int fd, uint32_t events, uint64_t tag) {
	struct epoll_event ev = {.events = events, .data.u64 = tag};
	return epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void evloop_remove(struct evloop *l, int fd) {
	(void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

int evloop_arm(struct evloop *l, uint64_t deadline_usec) {
	if (deadline_usec == l->armed_usec)
		return 0;
	struct itimerspec its = {0};
	if (deadline_usec != USEC_INFINITY) {
		/* A zero it_value would disarm the timer: a deadline already passed still needs one expiry. */
		uint64_t at = deadline_usec ? deadline_usec : 1;
		its.it_value.tv_sec = (time_t)(at / USEC_PER_SEC);
		its.it_value.tv_nsec = (long)(at % USEC_PER_SEC) * 1000;
	}
	if (timerfd_settime(l->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	l->armed_usec = deadline_usec;
	return 0;
}

void evloop_timer_expired(struct evloop *l) {
	uint64_t expirations;
	/* EAGAIN: the expiry was taken already (the timer was re-armed meanwhile); nothing to do. */
	(void)!read(l->timer_fd, &expirations, sizeof(expirations));
	l->armed_usec = USEC_INFINITY;
}

int evloop_next_signal(struct evloop *l, struct signalfd_siginfo *ret) {
	for (;;) {
		ssize_t n = read(l->signal_fd, ret, sizeof(*ret));
		if (n < 0 && errno == EINTR)
			continue;
		return n == (ssize_t)sizeof(*ret);
	}
}

int evloop_wait(struct evloop *l, struct epoll_event *events, int max) {
	int n = epoll_wait(l->epoll_fd, events, max, -1);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n;
}
