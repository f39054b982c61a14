/*
 * gwsh_sub.h - gwsh --sub: follow one channel for ever (gwsh_sub.c).
 * Depends on gwsh_opts.h (the options).
 */
#ifndef GWSH_SUB_H
#define GWSH_SUB_H

#include "gwsh_opts.h"

/* Follows o->sub until a stop signal or a refusal; returns the exit code. */
int gwsh_sub_run(const struct gwsh_opts *o);

#endif
