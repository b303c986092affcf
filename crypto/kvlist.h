/* An ordered list of owned (name, value) string pairs: S3 user metadata, KMS encryption contexts,
 * materials descriptions. Small (a handful of entries), so lookups are linear. */
#ifndef S3CSEFS_KVLIST_H
#define S3CSEFS_KVLIST_H

#include <stddef.h>

typedef struct {
    char *name;
    char *value;
} kv_pair;

typedef struct {
    kv_pair *items;
    size_t count;
    size_t capacity;
} kv_list;

void kv_list_init(kv_list *list);
void kv_list_free(kv_list *list);                 /* frees the strings and the array; list is reusable */
int kv_list_add(kv_list *list, const char *name, const char *value);     /* 0, or -1 on ENOMEM */
int kv_list_set(kv_list *list, const char *name, const char *value);     /* replace or add */
const char *kv_list_get(const kv_list *list, const char *name);          /* exact, case-sensitive */
const char *kv_list_get_ci(const kv_list *list, const char *name);       /* ASCII case-insensitive */
int kv_list_remove(kv_list *list, const char *name);                     /* 1 if removed, 0 if absent */
int kv_list_copy(kv_list *dst, const kv_list *src);                      /* dst must be initialised/empty */
/* Equal as maps: same names with same values, order ignored. */
int kv_list_equal(const kv_list *a, const kv_list *b);

#endif
