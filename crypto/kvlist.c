/* Ordered list of owned (name, value) string pairs: metadata, matdesc, encryption contexts. */
#include "kvlist.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void kv_list_init(kv_list *list)
{
    list->items = NULL;
    list->count = 0;
    list->capacity = 0;
}

void kv_list_free(kv_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        free(list->items[i].value);
    }
    free(list->items);
    kv_list_init(list);
}

static int kv_list_reserve(kv_list *list, size_t wanted)
{
    if (wanted <= list->capacity)
        return 0;
    size_t capacity = list->capacity ? list->capacity * 2 : 8;
    while (capacity < wanted)
        capacity *= 2;
    kv_pair *items = realloc(list->items, capacity * sizeof(*items));
    if (items == NULL)
        return -1;
    list->items = items;
    list->capacity = capacity;
    return 0;
}

int kv_list_add(kv_list *list, const char *name, const char *value)
{
    if (name == NULL || value == NULL || kv_list_reserve(list, list->count + 1) != 0)
        return -1;
    char *name_copy = strdup(name);
    char *value_copy = strdup(value);
    if (name_copy == NULL || value_copy == NULL) {
        free(name_copy);
        free(value_copy);
        return -1;
    }
    list->items[list->count].name = name_copy;
    list->items[list->count].value = value_copy;
    list->count++;
    return 0;
}

int kv_list_set(kv_list *list, const char *name, const char *value)
{
    if (name == NULL || value == NULL)
        return -1;
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].name, name) == 0) {
            char *value_copy = strdup(value);
            if (value_copy == NULL)
                return -1;
            free(list->items[i].value);
            list->items[i].value = value_copy;
            return 0;
        }
    }
    return kv_list_add(list, name, value);
}

const char *kv_list_get(const kv_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i].name, name) == 0)
            return list->items[i].value;
    return NULL;
}

const char *kv_list_get_ci(const kv_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->items[i].name, name) == 0)
            return list->items[i].value;
    return NULL;
}

int kv_list_remove(kv_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].name, name) == 0) {
            free(list->items[i].name);
            free(list->items[i].value);
            memmove(&list->items[i], &list->items[i + 1], (list->count - i - 1) * sizeof(kv_pair));
            list->count--;
            return 1;
        }
    }
    return 0;
}

int kv_list_copy(kv_list *dst, const kv_list *src)
{
    for (size_t i = 0; i < src->count; i++) {
        if (kv_list_add(dst, src->items[i].name, src->items[i].value) != 0) {
            kv_list_free(dst);
            return -1;
        }
    }
    return 0;
}

int kv_list_equal(const kv_list *a, const kv_list *b)
{
    if (a->count != b->count)
        return 0;
    /* Names are unique in every list we build, so "each of a is in b with the same value" plus equal
     * counts means equal maps. */
    for (size_t i = 0; i < a->count; i++) {
        const char *other = kv_list_get(b, a->items[i].name);
        if (other == NULL || strcmp(other, a->items[i].value) != 0)
            return 0;
    }
    return 1;
}
