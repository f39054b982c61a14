/*
 * mem_trim.h - hands the memory a burst took back to the system once the
 * burst is over.
 *
 * main.c fixes glibc's trim and mmap thresholds, so that the writer's
 * memory churn after every commit is not an madvise (and a TLB shootdown)
 * per batch. The price: what a burst took (pages nobody read, thousands of
 * queued lines) stayed with the process after its clients were gone, in
 * free chunks scattered through the arenas that no threshold returns.
 * Every few seconds this asks malloc how much it holds free and, past a
 * bound, trims every arena (malloc_trim), which also returns the free
 * pages inside them; the free memory at the top of a thread's arena it
 * does not return (main.c's trim threshold does, as it is freed). At most
 * once per period: under steady load the cost
 * is a few page faults a second; after a burst, the memory is back within
 * a period or two.
 *
 * Calls loop. Loop thread only.
 */
#ifndef GW_MEM_TRIM_H
#define GW_MEM_TRIM_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct mem_trim;

/*
 * Looks every period_ms; trims when malloc holds more than keep bytes free.
 * Loop borrowed: it outlives m.
 */
struct mem_trim *mem_trim_start(struct loop *loop, uint64_t period_ms, size_t keep);
/* Stops looking and frees. NULL is a no-op. */
void mem_trim_stop(struct mem_trim *m);

#endif
