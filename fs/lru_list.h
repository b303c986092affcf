/* Intrusive least-recently-used list shared by the key cache and the metadata cache: an entry embeds an
 * lru_node, the cache holds an lru_list (head = most recently used, tail = next to evict). Not
 * thread-safe by itself: callers hold their cache's lock. */
#ifndef S3CSEFS_LRU_LIST_H
#define S3CSEFS_LRU_LIST_H

#include <stddef.h>

typedef struct lru_node {
    struct lru_node *prev, *next;
} lru_node;

typedef struct {
    lru_node *head, *tail;
} lru_list;

/* The entry of type `type` whose member `member` is the node (NULL for a NULL node). */
#define LRU_ENTRY(node, type, member) ((node) ? (type *)(void *)((char *)(node) - offsetof(type, member)) : NULL)

/* Unlinks n; a node that is not in the list (never pushed, or removed already) is left as it is. */
static inline void lru_remove(lru_list *l, lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else if (l->head == n)
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else if (l->tail == n)
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static inline void lru_push_front(lru_list *l, lru_node *n)
{
    n->next = l->head;
    n->prev = NULL;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

/* Marks n most recently used. */
static inline void lru_touch(lru_list *l, lru_node *n)
{
    lru_remove(l, n);
    lru_push_front(l, n);
}

#endif
