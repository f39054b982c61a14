/*
 * loop.h - the event loop: epoll, fd callbacks and before-sleep hooks
 * (after redis ae.c).
 *
 * Single-threaded by contract: every function here is called from the
 * thread running loop_run, except loop_stop, which is also safe from a
 * callback. Other threads reach the loop through an eventfd they own and the
 * loop watches. Depends on gw.h and libc.
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include "gw.h"

#include <stdint.h>

#define LOOP_READ  1u
#define LOOP_WRITE 2u
/*
 * The peer closed its side or the connection broke (EPOLLRDHUP, EPOLLHUP,
 * EPOLLERR). Watched alone, it tells of a hang-up without waking for data.
 */
#define LOOP_HUP   4u

struct loop;

/*
 * events: LOOP_READ and/or LOOP_WRITE that are ready; errors/hangups count as
 * both, and add LOOP_HUP, as does the peer's close when LOOP_HUP is watched.
 */
typedef void loop_fd_cb(struct loop *loop, int fd, unsigned events, void *ctx);

/*
 * Runs before every sleep. Returns the longest time in ms the loop may sleep
 * for this hook's sake, or -1 for no limit. Hooks run in registration order.
 */
typedef int loop_hook_cb(struct loop *loop, void *ctx);

/* NULL with the reason in err when epoll cannot be created. */
struct loop *loop_new(char err[GW_ERRLEN]);
void loop_free(struct loop *loop);

/* Watches fd (level-triggered). Returns 0, or -1 with errno set. */
int loop_add_fd(struct loop *loop, int fd, unsigned events, loop_fd_cb *cb, void *ctx);
int loop_mod_fd(struct loop *loop, int fd, unsigned events);
/* Stops watching fd; safe from inside a callback, including fd's own. */
void loop_del_fd(struct loop *loop, int fd);

void loop_add_hook(struct loop *loop, loop_hook_cb *cb, void *ctx);

/*
 * One-shot timers on CLOCK_MONOTONIC, kept in a heap: cost nothing while
 * they wait, however many there are. The callback runs on the loop thread;
 * the timer is gone once it has run (do not cancel it then).
 */
struct loop_timer;
typedef void loop_timer_cb(struct loop *loop, void *ctx);
struct loop_timer *loop_timer_add(struct loop *loop, uint64_t delay_ms, loop_timer_cb *cb,
                                  void *ctx);
/* Cancels a timer that has not run yet. NULL is a no-op. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);

struct metrics_hist;
/*
 * From now on, the time each wake-up's work takes (callbacks, timers,
 * hooks: from epoll_wait's return to the next call) goes into h (borrowed,
 * must outlive the loop). NULL stops it.
 */
void loop_measure_busy(struct loop *loop, struct metrics_hist *h);

/* Dispatches until loop_stop; returns 0, or -1 if epoll_wait failed. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* CLOCK_MONOTONIC in milliseconds and microseconds. */
uint64_t loop_now_ms(void);
uint64_t loop_now_us(void);

#endif
