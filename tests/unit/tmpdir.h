/*
 * tmpdir.h - a temporary directory for the unit tests that work on real files
 * (SQLite databases), removed with the files it holds at the end.
 *
 * Header-only like tap.h, which it needs (bail_out): include it after tap.h,
 * from one .c file per test program. Files only, no subdirectories.
 */
#ifndef TMPDIR_H
#define TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes /tmp/visavis-test-<name>-XXXXXX into dir (cap bytes); bails out on failure. */
static inline void tmpdir_make(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "/tmp/visavis-test-%s-XXXXXX", name);
    if (!mkdtemp(dir))
        bail_out("mkdtemp %s failed", dir);
}

/* Removes dir and the files in it. */
static inline void tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

#endif
