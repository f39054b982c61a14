/*
 * test_store_postgres.c - what the PostgreSQL backend decides without a
 * server: which targets are its own, what a target looks like in a log,
 * which error class means what, what a notice carries, and how a target
 * becomes one attempt to connect per host. The backend
 * against a real server is tested by tests/integration (test_cluster.py, and
 * the suites run with VISAVIS_TEST_BACKEND=postgres).
 */
#include "store.h"
#include "store_postgres.h"

#include "tap.h"

#include <string.h>

static void test_targets(void)
{
    static const struct {
        const char *target;
        bool postgres;
    } cases[] = {
        {"postgres://gw:secret@db:5432/visavis", true},
        {"postgresql://db/visavis", true},
        {"postgresql:///visavis?host=/run/postgresql", true},
        {"postgresql://", true},
        {"host=db dbname=visavis user=gw", true},
        {"dbname=visavis", true},
        {"  host = db   port=5433", true},
        {"service=visavis", true},
        {"./visavis.db", false},
        {"visavis.db", false},
        {"/data/visavis.db", false},
        {"a=b.db", false},                 /* no libpq keyword: a file name */
        {"./host=db", false},              /* the key would be "./host" */
        {"host=db nosuchkey=1", true},     /* meant for libpq, which refuses it at the open */
        {"dbname='unterminated", true},    /* the same: not a SQLite file of that name */
        {"nosuchkey=1 host=db", false},    /* judged by the first key */
        {"postgres:/not-a-url.db", false}, /* one slash: a relative path */
        {"POSTGRES.db", false},
        {"", false},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        is_int(store_pg_is_target(cases[i].target), cases[i].postgres, "'%s' is %s",
               cases[i].target, cases[i].postgres ? "PostgreSQL's" : "a SQLite file");
        is_str(store_backend_name(cases[i].target), cases[i].postgres ? "postgres" : "sqlite",
               "'%s': backend name", cases[i].target);
    }
}

static void test_describe(void)
{
    static const struct {
        const char *target, *want;
    } cases[] = {
        {"postgres://gw:secret@db.example:5433/visavis",
         "postgres host=db.example port=5433 dbname=visavis user=gw"},
        {"host=db dbname=visavis user=gw password=secret",
         "postgres host=db dbname=visavis user=gw"},
        {"postgresql:///visavis", "postgres dbname=visavis"},
        {"./t.db", "./t.db"},
    };
    char out[200];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        store_target_describe(cases[i].target, out, sizeof(out));
        is_str(out, cases[i].want, "describe '%s'", cases[i].target);
        ok(!strstr(out, "secret"), "describe '%s': no password", cases[i].target);
    }
    store_target_describe("host=db password=secret", out, 12);
    is_str(out, "postgres ho", "describe into a short buffer: cut, NUL-terminated");
}

static void test_error_of(void)
{
    static const struct {
        const char *state;
        bool connection_ok;
        enum gw_err want;
        bool refused;
    } cases[] = {
        /* the connection is gone, whatever the state */
        {NULL, false, GW_E_STORE_UNAVAILABLE, false},
        {"", false, GW_E_STORE_UNAVAILABLE, false},
        {"23505", false, GW_E_STORE_UNAVAILABLE, false},
        {"08006", true, GW_E_STORE_UNAVAILABLE, false}, /* connection_failure */
        {"08001", true, GW_E_STORE_UNAVAILABLE, false}, /* cannot connect */
        {"57P01", true, GW_E_STORE_UNAVAILABLE, false}, /* admin_shutdown */
        {"57P02", true, GW_E_STORE_UNAVAILABLE, false}, /* crash_shutdown */
        {"57P03", true, GW_E_STORE_UNAVAILABLE, false}, /* cannot_connect_now */
        {"53300", true, GW_E_STORE_UNAVAILABLE, false}, /* too_many_connections */
        /* waits and conflicts that may pass */
        {"40001", true, GW_E_STORE_BUSY, false}, /* serialization_failure */
        {"40P01", true, GW_E_STORE_BUSY, false}, /* deadlock_detected */
        {"55P03", true, GW_E_STORE_BUSY, false}, /* lock_not_available: lock_timeout */
        {"57014", true, GW_E_STORE_BUSY, false}, /* query_canceled: statement_timeout */
        /* no room */
        {"53100", true, GW_E_STORE_FULL, false}, /* disk_full */
        /* the row's fault */
        {"22001", true, GW_E_STORE, true}, /* string_data_right_truncation */
        {"22021", true, GW_E_STORE, true}, /* character_not_in_repertoire */
        {"22P05", true, GW_E_STORE, true}, /* untranslatable_character */
        {"23505", true, GW_E_STORE, true}, /* unique_violation */
        {"23503", true, GW_E_STORE, true}, /* foreign_key_violation */
        {"54000", true, GW_E_STORE, true}, /* program_limit_exceeded: a row too big */
        /* broken */
        {"53200", true, GW_E_STORE, false}, /* out_of_memory */
        {"42P01", true, GW_E_STORE, false}, /* undefined_table */
        {"25006", true, GW_E_STORE, false}, /* read_only_sql_transaction: a standby */
        {"XX000", true, GW_E_STORE, false}, /* internal_error */
        {"XX001", true, GW_E_STORE, false}, /* data_corrupted */
        {NULL, true, GW_E_STORE, false},
        {"57P0", true, GW_E_STORE, false}, /* not a state */
        {"5", true, GW_E_STORE, false},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        bool refused = !cases[i].refused;
        enum gw_err got = store_pg_error_of(cases[i].state, cases[i].connection_ok, &refused);
        const char *state = cases[i].state ? cases[i].state : "(none)";
        is_str(gw_err_code(got), gw_err_code(cases[i].want), "SQLSTATE %s, connection %s: %s",
               state, cases[i].connection_ok ? "up" : "down", gw_err_code(cases[i].want));
        is_int(refused, cases[i].refused, "SQLSTATE %s: %s", state,
               cases[i].refused ? "the row refused" : "not the row's fault");
    }
}

static void test_notices(void)
{
    static const struct {
        const char *payload;
        bool valid;
        const char *gw;
        int64_t top;
        const char *channel;
    } cases[] = {
        {"0123456789abcdef 42 general", true, "0123456789abcdef", 42, "general"},
        {"0 7 a.b-c_D9", true, "0", 7, "a.b-c_D9"},
        {"0 9223372036854775807 x", true, "0", INT64_MAX, "x"},
        {"0 1 "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         true, "0", 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"0 1 "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         false, NULL, 0, NULL}, /* a 65-byte channel name */
        {"0 9223372036854775808 x", false, NULL, 0, NULL},
        {"0 0 x", false, NULL, 0, NULL},
        {"0 -1 x", false, NULL, 0, NULL},
        {"0 1x x", false, NULL, 0, NULL},
        {"0  x", false, NULL, 0, NULL},
        {"0 1 ", false, NULL, 0, NULL},
        {"0 1 a b", false, NULL, 0, NULL},
        {"0 1 a/b", false, NULL, 0, NULL},
        {" 1 a", false, NULL, 0, NULL},
        {"0123456789abcdef0 1 a", false, NULL, 0, NULL}, /* a mark of 17 */
        {"0 1", false, NULL, 0, NULL},
        {"", false, NULL, 0, NULL},
        {"hello", false, NULL, 0, NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char gw[17] = "", channel[GW_CHANNEL_MAX + 1] = "";
        int64_t top = -5;
        bool valid = store_pg_parse_notice(cases[i].payload, gw, &top, channel);
        is_int(valid, cases[i].valid, "notice '%s' is %s", cases[i].payload,
               cases[i].valid ? "read" : "refused");
        if (!cases[i].valid || !valid)
            continue;
        is_str(gw, cases[i].gw, "notice '%s': gateway", cases[i].payload);
        is_int(top, cases[i].top, "notice '%s': top", cases[i].payload);
        is_str(channel, cases[i].channel, "notice '%s': channel", cases[i].payload);
    }
}

/* The value libpq takes for key from a plan's current attempt: the last one given, NULL if none. */
static const char *plan_value(const struct store_pg_plan *plan, const char *key)
{
    const char *v = NULL;

    for (size_t k = 0; plan->keys[k]; k++) {
        if (strcmp(plan->keys[k], key) == 0)
            v = plan->values[k];
    }
    return v;
}

static const char *const plan_keys[] = {"keepalives", "fallback_application_name", NULL};
static const char *const plan_defaults[] = {"1", "visavis test", NULL};

/* One attempt per host, with its host, hostaddr and port; the deadline of each. */
static void test_plan_hosts(void)
{
    static const struct {
        const char *target;
        size_t attempts;
        unsigned timeout_s;
        const char *host[3], *hostaddr[3], *port[3];
    } cases[] = {
        {"host=db dbname=visavis", 1, 5, {"db"}, {NULL}, {NULL}},
        {"host=a,b port=1,2", 2, 5, {"a", "b"}, {NULL, NULL}, {"1", "2"}},
        {"host=a,b port=5433", 2, 5, {"a", "b"}, {NULL, NULL}, {"5433", "5433"}},
        {"host=a,b,c", 3, 5, {"a", "b", "c"}, {NULL, NULL, NULL}, {NULL, NULL, NULL}},
        {"postgresql://u@a:1,b:2/db", 2, 5, {"a", "b"}, {NULL, NULL}, {"1", "2"}},
        {"postgresql://u@a,b:2/db", 2, 5, {"a", "b"}, {NULL, NULL}, {"", "2"}}, /* a: the default
                                                                                   port */
        {"hostaddr=10.0.0.1,10.0.0.2 port=7",
         2,
         5,
         {NULL, NULL},
         {"10.0.0.1", "10.0.0.2"},
         {"7", "7"}},
        {"host=a,b hostaddr=10.0.0.1,10.0.0.2",
         2,
         5,
         {"a", "b"},
         {"10.0.0.1", "10.0.0.2"},
         {NULL, NULL}},
        {"dbname=visavis", 1, 5, {NULL}, {NULL}, {NULL}}, /* libpq's defaults and environment */
        /* connect_timeout: libpq's minimum of 2 s; none or 0 (libpq: for ever) is the gateway's 5
         */
        {"host=db connect_timeout=1", 1, 2, {"db"}, {NULL}, {NULL}},
        {"host=db connect_timeout=12", 1, 12, {"db"}, {NULL}, {NULL}},
        {"host=db connect_timeout=0", 1, 5, {"db"}, {NULL}, {NULL}},
        {"host=db connect_timeout=-3", 1, 5, {"db"}, {NULL}, {NULL}},
        {"host=db connect_timeout=' 7 '", 1, 7, {"db"}, {NULL}, {NULL}},
        {"postgresql://a:1,b:2/db?connect_timeout=3", 2, 3, {"a", "b"}, {NULL, NULL}, {"1", "2"}},
        /* counts libpq refuses: not split, so that libpq says what is wrong */
        {"host=a,b,c port=1,2", 1, 5, {"a,b,c"}, {NULL}, {"1,2"}},
        {"host=a,b hostaddr=10.0.0.1", 1, 5, {"a,b"}, {"10.0.0.1"}, {NULL}},
        {"host=a hostaddr=10.0.0.1,10.0.0.2", 1, 5, {"a"}, {"10.0.0.1,10.0.0.2"}, {NULL}},
    };
    char why[GW_ERRLEN];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct store_pg_plan plan;
        const char *t = cases[i].target;
        if (!ok(store_pg_plan(t, plan_keys, plan_defaults, &plan, why), "plan of '%s'", t)) {
            diag("  why: %s", why);
            continue;
        }
        is_uint(plan.attempts, cases[i].attempts, "'%s': attempts", t);
        is_uint(plan.timeout_s, cases[i].timeout_s, "'%s': seconds per attempt", t);
        for (size_t a = 0; a < plan.attempts && a < cases[i].attempts; a++) {
            store_pg_plan_attempt(&plan, a);
            is_str(plan.host[a], cases[i].host[a], "'%s' attempt %zu: host", t, a);
            is_str(plan.hostaddr[a], cases[i].hostaddr[a], "'%s' attempt %zu: hostaddr", t, a);
            is_str(plan.port[a], cases[i].port[a], "'%s' attempt %zu: port", t, a);
            is_str(plan_value(&plan, "host"), cases[i].host[a], "'%s' attempt %zu: host given", t,
                   a);
            is_str(plan_value(&plan, "hostaddr"), cases[i].hostaddr[a],
                   "'%s' attempt %zu: hostaddr given", t, a);
            is_str(plan_value(&plan, "port"), cases[i].port[a], "'%s' attempt %zu: port given", t,
                   a);
        }
        store_pg_plan_free(&plan);
    }
}

/* Every other keyword of the target goes to every attempt as given, over the defaults. */
static void test_plan_keywords(void)
{
    static const char *const targets[] = {
        "host=a,b port=1,2 dbname=vv user=gw password=pw target_session_attrs=read-write "
        "sslmode=require options='-c synchronous_commit=remote_apply' connect_timeout=9 "
        "fallback_application_name=mine",
        "postgresql://gw:pw@a:1,b:2/vv?target_session_attrs=read-write&sslmode=require"
        "&options=-c%20synchronous_commit%3Dremote_apply&connect_timeout=9"
        "&fallback_application_name=mine",
    };
    static const char *const want[][2] = {
        {"dbname", "vv"},
        {"user", "gw"},
        {"password", "pw"},
        {"target_session_attrs", "read-write"},
        {"sslmode", "require"},
        {"options", "-c synchronous_commit=remote_apply"},
        {"connect_timeout", "9"},
        {"fallback_application_name", "mine"}, /* the target's, over the default */
        {"keepalives", "1"},                   /* the default: the target gives none */
        {"application_name", NULL},
        {"service", NULL},
    };
    char why[GW_ERRLEN];

    for (size_t i = 0; i < GW_ARRAY_SIZE(targets); i++) {
        struct store_pg_plan plan;
        if (!ok(store_pg_plan(targets[i], plan_keys, plan_defaults, &plan, why), "plan %zu", i)) {
            diag("  why: %s", why);
            continue;
        }
        is_uint(plan.attempts, 2, "plan %zu: attempts", i);
        for (size_t a = 0; a < plan.attempts; a++) {
            store_pg_plan_attempt(&plan, a);
            for (size_t k = 0; k < GW_ARRAY_SIZE(want); k++)
                is_str(plan_value(&plan, want[k][0]), want[k][1], "plan %zu attempt %zu: %s", i, a,
                       want[k][0]);
        }
        store_pg_plan_free(&plan);
    }
}

/* What libpq cannot read, and a connect_timeout that is no number, fail with libpq's words. */
static void test_plan_refused(void)
{
    static const struct {
        const char *target, *why;
    } cases[] = {
        {"host=a usr=gw", "invalid connection option \"usr\""},
        {"host=a dbname='vv", "unterminated quoted string in connection info string"},
        {"host=a connect_timeout=abc",
         "invalid integer value \"abc\" for connection option \"connect_timeout\""},
        {"host=a connect_timeout=5s",
         "invalid integer value \"5s\" for connection option \"connect_timeout\""},
        {"postgresql://a/vv?connect_timeout=99999999999",
         "invalid integer value \"99999999999\" for connection option \"connect_timeout\""},
    };
    char why[GW_ERRLEN];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct store_pg_plan plan;
        ok(!store_pg_plan(cases[i].target, plan_keys, plan_defaults, &plan, why), "'%s' is refused",
           cases[i].target);
        is_str(why, cases[i].why, "'%s': why", cases[i].target);
        ok(!plan.parsed && !plan.keys, "'%s': nothing left to free", cases[i].target);
    }
}

int main(void)
{
    test_targets();
    test_describe();
    test_error_of();
    test_notices();
    test_plan_hosts();
    test_plan_keywords();
    test_plan_refused();
    return done_testing();
}
