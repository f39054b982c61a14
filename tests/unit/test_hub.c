/*
 * test_hub.c - gateway/hub.h: the intrusive list, and the channel table
 * (add, find, remove), through enough channels to make the table grow many
 * times.
 */
#include "hub.h"

#include "gw.h"
#include "tap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the list ---- */

struct item {
    struct hub_link link; /* first: a link pointer is an item pointer */
    int id;
};

/* "1,2,3" from head->next onwards, and checks the prev links agree. */
static void list_str(struct hub_link *head, char *out, size_t cap, bool *consistent)
{
    size_t n = 0;
    int steps = 0;

    out[0] = '\0';
    *consistent = head->next->prev == head && head->prev->next == head;
    for (struct hub_link *l = head->next; l != head && steps < 100; l = l->next, steps++) {
        n += (size_t)snprintf(out + n, cap - n, "%s%d", n ? "," : "", ((struct item *)l)->id);
        if (l->next->prev != l || l->prev->next != l)
            *consistent = false;
        if (n >= cap)
            break;
    }
    if (steps >= 100)
        *consistent = false;
}

static bool self_linked(const struct hub_link *l)
{
    return l->next == l && l->prev == l;
}

static void check_list(struct hub_link *head, const char *want, const char *what)
{
    char got[128];
    bool consistent;

    list_str(head, got, sizeof(got), &consistent);
    is_str(got, want, "list %s: [%s]", what, want);
    ok(consistent, "list %s: prev and next links agree", what);
}

static void test_list(void)
{
    struct hub_link head, other;
    struct item it[5];

    for (int i = 0; i < 5; i++)
        it[i].id = i + 1;
    hub_list_init(&head);
    ok(self_linked(&head), "an initialised head points at itself");
    check_list(&head, "", "empty");

    hub_list_push(&head, &it[0].link);
    check_list(&head, "1", "after push 1");
    ok(head.next == &it[0].link && head.prev == &it[0].link, "one item: head's next and prev");
    hub_list_push(&head, &it[1].link);
    hub_list_push(&head, &it[2].link);
    check_list(&head, "1,2,3", "push appends at the tail");
    ok(head.prev == &it[2].link, "head->prev is the last pushed");

    hub_list_remove(&it[1].link);
    check_list(&head, "1,3", "remove from the middle");
    ok(self_linked(&it[1].link), "a removed link points at itself");
    hub_list_remove(&it[1].link);
    check_list(&head, "1,3", "removing a removed link again changes nothing");

    hub_list_remove(&it[0].link);
    check_list(&head, "3", "remove the first");
    hub_list_push(&head, &it[3].link);
    hub_list_push(&head, &it[1].link);
    check_list(&head, "3,4,2", "push after removes, a removed link reused");
    hub_list_remove(&it[1].link);
    check_list(&head, "3,4", "remove the last");
    ok(head.prev == &it[3].link, "head->prev follows a removed tail");

    /* Moving a link to another list. */
    hub_list_init(&other);
    hub_list_remove(&it[2].link);
    hub_list_push(&other, &it[2].link);
    check_list(&head, "4", "moved away: the old list");
    check_list(&other, "3", "moved away: the new list");

    /* Removal while walking, the way fan_out keeps `next` first. */
    hub_list_push(&head, &it[0].link);
    hub_list_push(&head, &it[4].link);
    int seen = 0;
    for (struct hub_link *l = head.next, *next; l != &head; l = next) {
        next = l->next;
        seen++;
        if (((struct item *)l)->id != 1)
            hub_list_remove(l);
    }
    is_int(seen, 3, "walk with removal visits every item once");
    check_list(&head, "1", "walk with removal keeps the ones not removed");

    hub_list_remove(&it[0].link);
    hub_list_remove(&it[2].link);
    ok(self_linked(&head) && self_linked(&other), "both lists empty again");
}

/* ---- the table ---- */

static void test_basic(void)
{
    struct hub *hub = hub_new();

    hub_free(NULL);
    ok(1, "hub_free(NULL) is a no-op");
    ok(hub != NULL, "hub_new");
    is_uint(hub_channels(hub), 0, "new hub: 0 channels");
    ok(hub_find(hub, "a") == NULL, "new hub: find 'a' is NULL");
    ok(hub_find(hub, "") == NULL, "new hub: find '' is NULL");

    struct hub_channel *a = hub_add(hub, "a", 5);
    ok(a != NULL, "add 'a'");
    is_str(a->name, "a", "add 'a': name");
    is_int(a->top, 5, "add 'a': top 5");
    is_uint(a->subs, 0, "add 'a': no subscriptions yet");
    ok(self_linked(&a->live), "add 'a': empty live list");
    is_uint(hub_channels(hub), 1, "1 channel");
    ok(hub_find(hub, "a") == a, "find 'a' gives the added one");

    struct hub_channel *b = hub_add(hub, "b", 0);
    struct hub_channel *big = hub_add(hub, "A", -1); /* names are case-sensitive */
    is_uint(hub_channels(hub), 3, "3 channels");
    ok(hub_find(hub, "a") == a && hub_find(hub, "b") == b && hub_find(hub, "A") == big,
       "find each of a, b, A");
    is_int(big->top, -1, "top is stored as given");
    ok(hub_find(hub, "c") == NULL, "find 'c' is NULL");
    ok(hub_find(hub, "ab") == NULL, "find 'ab' is NULL");
    ok(hub_find(hub, "") == NULL, "find '' is NULL");

    /* The name is copied: the caller's buffer may change. */
    char name[GW_CHANNEL_MAX + 1];
    memset(name, 'n', GW_CHANNEL_MAX);
    name[GW_CHANNEL_MAX] = '\0';
    struct hub_channel *longest = hub_add(hub, name, 7);
    char copy[GW_CHANNEL_MAX + 1];
    memcpy(copy, name, sizeof(copy));
    name[0] = 'X';
    ok(hub_find(hub, copy) == longest, "a %d-byte name: found by its bytes", GW_CHANNEL_MAX);
    is_str(longest->name, copy, "a %d-byte name: copied whole", GW_CHANNEL_MAX);
    ok(hub_find(hub, name) == NULL, "the caller's buffer is not the name");

    a->top = 42;
    ok(hub_find(hub, "a")->top == 42, "top is the channel's, kept across finds");

    hub_remove(hub, a);
    ok(hub_find(hub, "a") == NULL, "removed 'a' is gone");
    ok(hub_find(hub, "b") == b && hub_find(hub, "A") == big && hub_find(hub, copy) == longest,
       "the others are still found after removing 'a'");
    is_uint(hub_channels(hub), 3, "3 channels after a removal");

    a = hub_add(hub, "a", 9);
    ok(hub_find(hub, "a") == a && a->top == 9, "'a' added again, with its new top");
    hub_remove(hub, b);
    hub_remove(hub, a);
    hub_remove(hub, longest);
    hub_remove(hub, big);
    is_uint(hub_channels(hub), 0, "every channel removed");
    ok(hub_find(hub, "a") == NULL && hub_find(hub, "A") == NULL, "nothing found in an empty hub");
    hub_free(hub); /* asserts that the hub is empty */
}

#define MANY 10000

static void name_of(char out[GW_CHANNEL_MAX + 1], int i)
{
    snprintf(out, GW_CHANNEL_MAX + 1, "ch-%d", i);
}

/* Every live channel found at its own pointer, every removed one not found. */
static bool all_findable(struct hub *hub, struct hub_channel **chans, int n, int *first_bad)
{
    char name[GW_CHANNEL_MAX + 1];

    for (int i = 0; i < n; i++) {
        name_of(name, i);
        struct hub_channel *ch = hub_find(hub, name);
        if (ch != chans[i] || (ch && (ch->top != i || strcmp(ch->name, name) != 0))) {
            *first_bad = i;
            return false;
        }
    }
    return true;
}

/* What hub_each showed: every channel of chans[] once, nothing else. */
struct each_rec {
    struct hub_channel **chans;
    size_t visits, strangers;
};

static void each_visit(struct hub_channel *ch, void *ctx)
{
    struct each_rec *rec = ctx;
    int i = (int)ch->top; /* test_many gives channel i the top i */

    rec->visits++;
    if (i < 0 || i >= MANY || rec->chans[i] != ch)
        rec->strangers++;
    else
        rec->chans[i]->top = -1 - i; /* seen: a second visit is a stranger */
}

static void test_many(void)
{
    struct hub *hub = hub_new();
    struct hub_channel **chans = gw_xcalloc(MANY, sizeof(*chans));
    char name[GW_CHANNEL_MAX + 1];
    int bad = -1, growth_checks = 0, growth_ok = 1;

    for (int i = 0; i < MANY; i++) {
        name_of(name, i);
        chans[i] = hub_add(hub, name, i);
        /* Around every power of two the table may have grown: look at everything. */
        int n = i + 1;
        if ((n & (n - 1)) == 0 || ((n - 1) & (n - 2)) == 0) {
            growth_checks++;
            if (!all_findable(hub, chans, n, &bad) && growth_ok) {
                growth_ok = 0;
                diag("after %d adds, channel %d is not found where it should be", n, bad);
            }
        }
    }
    ok(growth_ok, "every channel findable around each growth (%d checks)", growth_checks);
    is_uint(hub_channels(hub), MANY, "%d channels", MANY);
    ok(all_findable(hub, chans, MANY, &bad), "all %d channels findable", MANY);
    ok(hub_find(hub, "ch-10000") == NULL && hub_find(hub, "ch-") == NULL &&
           hub_find(hub, "ch-01") == NULL,
       "names never added are not found");

    bool distinct = true;
    for (int i = 1; i < MANY && distinct; i++)
        distinct = chans[i] != chans[i - 1];
    ok(distinct, "each add returns its own channel");

    /* Remove every even one: the odd ones stay findable. */
    for (int i = 0; i < MANY; i += 2) {
        hub_remove(hub, chans[i]);
        chans[i] = NULL;
    }
    is_uint(hub_channels(hub), MANY / 2, "%d channels after removing the even ones", MANY / 2);
    bad = -1;
    if (!ok(all_findable(hub, chans, MANY, &bad), "odd ones found, even ones gone"))
        diag("first wrong: ch-%d", bad);

    /* Re-add some, remove in another order. */
    for (int i = 0; i < MANY; i += 4) {
        name_of(name, i);
        chans[i] = hub_add(hub, name, i);
    }
    bad = -1;
    if (!ok(all_findable(hub, chans, MANY, &bad), "after re-adding every fourth"))
        diag("first wrong: ch-%d", bad);
    for (int i = MANY - 1; i >= 0; i--) {
        if (chans[i] && i % 3 == 0) {
            hub_remove(hub, chans[i]);
            chans[i] = NULL;
        }
    }
    bad = -1;
    if (!ok(all_findable(hub, chans, MANY, &bad), "after removing every third, backwards"))
        diag("first wrong: ch-%d", bad);
    size_t left = 0;
    for (int i = 0; i < MANY; i++)
        left += chans[i] != NULL;
    is_uint(hub_channels(hub), left, "hub_channels counts the %zu left", left);
    struct each_rec rec = {.chans = chans};
    hub_each(hub, each_visit, &rec);
    ok(rec.visits == left && rec.strangers == 0, "hub_each visits the %zu left, each once", left);
    for (int i = 0; i < MANY; i++) {
        if (chans[i])
            hub_remove(hub, chans[i]);
    }
    is_uint(hub_channels(hub), 0, "all removed");
    free(chans);
    hub_free(hub);
}

/* Channels whose hashes share a bucket: removing one must not lose the others. */
static void test_same_bucket(void)
{
    struct hub *hub = hub_new();
    struct hub_channel *chans[300];
    char name[GW_CHANNEL_MAX + 1];

    /*
     * 60 names before any growth, in a first table of a few dozen buckets:
     * by the birthday bound many share a bucket, so removals hit the heads,
     * middles and tails of chains.
     */
    for (int i = 0; i < 60; i++) {
        name_of(name, i);
        chans[i] = hub_add(hub, name, i);
    }
    /* Remove from the middle and the ends of whatever chains formed. */
    for (int i = 0; i < 60; i += 3) {
        hub_remove(hub, chans[i]);
        chans[i] = NULL;
    }
    int bad = -1;
    ok(all_findable(hub, chans, 60, &bad), "no growth yet: removals keep the chain mates");
    for (int i = 60; i < 300; i++) {
        name_of(name, i);
        chans[i] = hub_add(hub, name, i);
    }
    ok(all_findable(hub, chans, 300, &bad), "after growing with holes: all findable");
    for (int i = 0; i < 300; i++) {
        if (chans[i])
            hub_remove(hub, chans[i]);
    }
    is_uint(hub_channels(hub), 0, "same bucket: all removed");
    hub_free(hub);
}

int main(void)
{
    test_list();
    test_basic();
    test_many();
    test_same_bucket();
    return done_testing();
}
