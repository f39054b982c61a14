/*
 * gwbench_spawn.c - a gateway of gwbench's own; see gwbench_spawn.h.
 */
#include "gwbench_spawn.h"

#include "gwbench_progress.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int spawn_gateway(const char *path, const struct gwbench_opts *o, struct spawned *s)
{
    const char *tmp = getenv("TMPDIR");
    char db[300], line[256];
    size_t used = 0;
    int pfd[2];
    int64_t deadline = client_now_ns() + (int64_t)(o->timeout_s * 2e9);

    memset(s, 0, sizeof(s->http) + sizeof(s->tcp));
    s->udp[0] = '\0';
    s->pid = -1;
    /* Not tmpfs if we can help it: there an fsync costs nothing and the publish numbers lie. */
    snprintf(s->dir, sizeof(s->dir), "%s/gwbench-XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
    if (!mkdtemp(s->dir)) {
        gwbench_status("--spawn: cannot make a directory %s: %s", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(db, sizeof(db), "%s/gwbench.db", s->dir);
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        gwbench_status("--spawn: pipe: %s", strerror(errno));
        return -1;
    }
    s->pid = fork();
    if (s->pid < 0) {
        gwbench_status("--spawn: fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (s->pid == 0) {
        /* Its own process group: a ^C stops gwbench, which then stops the gateway. */
        setpgid(0, 0);
        /* And should gwbench die without stopping it, it goes too. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pfd[1], STDOUT_FILENO);
        /* execlp: a bare name is looked up on PATH, a path is taken as it is. */
        execlp(path, path, "--http-addr", "127.0.0.1:0", "--tcp-addr", "127.0.0.1:0", "--udp-addr",
               "127.0.0.1:0", "--udp-rate", "0", "--db", db, "--log-level", "warn", (char *)NULL);
        fprintf(stderr, "gwbench: --spawn: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    /* In the parent too: a stop that comes before the child ran must find the group. */
    setpgid(s->pid, s->pid);
    close(pfd[1]);
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int64_t left = deadline - client_now_ns();
        char *nl;
        ssize_t n;
        int hp, tp, up;

        if (*o->stop) {
            gwbench_status("--spawn: interrupted before %s was ready", path);
            break;
        }
        if (left <= 0) {
            gwbench_status("--spawn: %s did not print READY in time", path);
            break;
        }
        if (poll(&p, 1, (int)(left / 1000000 + 1)) <= 0)
            continue;
        n = read(pfd[0], line + used, sizeof(line) - 1 - used);
        if (n <= 0) {
            gwbench_status("--spawn: %s exited before it was ready", path);
            break;
        }
        used += (size_t)n;
        line[used] = '\0';
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            int got = sscanf(line, "READY http=%d tcp=%d udp=%d", &hp, &tp, &up);
            if (got >= 2) {
                snprintf(s->http, sizeof(s->http), "127.0.0.1:%d", hp);
                snprintf(s->tcp, sizeof(s->tcp), "127.0.0.1:%d", tp);
                if (got == 3)
                    snprintf(s->udp, sizeof(s->udp), "127.0.0.1:%d", up);
                close(pfd[0]); /* it writes nothing more there; a late write gets EPIPE, harmless */
                return 0;
            }
            memmove(line, nl + 1, used - (size_t)(nl + 1 - line) + 1);
            used -= (size_t)(nl + 1 - line);
        }
        if (used == sizeof(line) - 1)
            used = 0;
    }
    close(pfd[0]);
    return -1;
}

void spawn_stop(struct spawned *s)
{
    static const char *const files[] = {"gwbench.db", "gwbench.db-wal", "gwbench.db-shm"};
    char path[320];

    if (s->pid > 0) {
        /*
         * The whole process group: what was spawned may be a script that runs
         * the gateway as its child (without exec), and the database's folder
         * goes only once every process that may write there is gone.
         */
        pid_t pgid = s->pid;
        bool reaped = false;
        int status;
        int64_t deadline = client_now_ns() + 10 * 1000000000LL;

        kill(-pgid, SIGTERM);
        for (;;) {
            struct timespec ts = {0, 20 * 1000000L};
            if (!reaped && waitpid(s->pid, &status, WNOHANG) != 0)
                reaped = true; /* exited (or not ours to wait for any more) */
            /* Once the child is reaped, the group is empty when no process is left to signal. */
            if (reaped && kill(-pgid, 0) < 0 && errno == ESRCH)
                break;
            if (client_now_ns() > deadline) {
                kill(-pgid, SIGKILL);
                if (!reaped)
                    waitpid(s->pid, &status, 0);
                /* A grandchild is reaped by another: give the kill a moment to land. */
                for (int i = 0; i < 50 && !(kill(-pgid, 0) < 0 && errno == ESRCH); i++)
                    nanosleep(&ts, NULL);
                break;
            }
            nanosleep(&ts, NULL);
        }
        s->pid = -1;
    }
    if (s->dir[0]) {
        for (size_t i = 0; i < GW_ARRAY_SIZE(files); i++) {
            snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
            unlink(path);
        }
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}
