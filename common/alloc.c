/*
 * alloc.c - allocators that abort instead of returning NULL.
 *
 * A message service that runs out of memory cannot keep its promises to
 * anyone; failing loudly at the allocation beats an error path in every
 * caller that is never tested.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void oom(size_t size)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", size);
    abort();
}

void *gw_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *gw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *gw_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *gw_xstrdup(const char *s)
{
    return gw_xmemdup(s, strlen(s));
}

char *gw_xmemdup(const void *ptr, size_t len)
{
    char *p = gw_xmalloc(len + 1);
    if (len)
        memcpy(p, ptr, len);
    p[len] = '\0';
    return p;
}
