/*
 * replay.c - runs a fuzz target over files, without libFuzzer: the main()
 * libFuzzer would supply, for replaying the checked-in corpus in every
 * build (gcc or clang, sanitized or not) as an ordinary test.
 *
 *   replay_<target> <file or directory>...
 *
 * Each file (each regular file of a directory, in name order) is read whole
 * and given to LLVMFuzzerTestOneInput once. A broken invariant aborts, as it
 * does under libFuzzer; otherwise TAP, one line per input.
 */
#include "gw.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    size_t len = 0, cap = 0, n;

    if (!f) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *grown = gw_xrealloc(data, cap);
            data = grown;
        }
        n = fread(data + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    /* An exact-size copy, so that ASan sees a read one past the input. */
    unsigned char *exact = gw_xmalloc(len ? len : 1);
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    printf("ok %d - %s\n", ++count, path);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct dirent **names;
        struct stat st;
        int n;

        if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
            run_file(argv[i]);
            continue;
        }
        if ((n = scandir(argv[i], &names, NULL, by_name)) < 0) {
            printf("Bail out! cannot list %s\n", argv[i]);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                run_file(path);
            free(names[k]);
        }
        free(names);
    }
    if (count == 0) {
        printf("Bail out! no input given\n");
        return 1;
    }
    printf("1..%d\n", count);
    return 0;
}
