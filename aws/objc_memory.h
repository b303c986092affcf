/* Test-only extras of the in-memory object client (objc_new_memory in object_client.h): call counts,
 * a direct look at stored objects for assertions, and knobs that make S3's limits testable with small
 * data. All functions return -1 (or do nothing) when `c` is not a memory client. */
#ifndef S3CSEFS_OBJC_MEMORY_H
#define S3CSEFS_OBJC_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include "object_client.h"

/* S3's minimum size of every part but the last (EntityTooSmall at completion). */
#define OBJC_MEMORY_DEFAULT_MIN_PART_SIZE ((size_t)5 * 1024 * 1024)

typedef struct {
    uint64_t head, get, put, mpu_create, mpu_part, mpu_complete, mpu_abort, mpu_list, list, copy;
    uint64_t delete_one;           /* DeleteObject calls */
    uint64_t delete_requests;      /* DeleteObjects requests (one per 1000 keys) */
    uint64_t failed;               /* calls that returned an error */
    uint64_t bytes_put;            /* PutObject + UploadPart bodies received */
    uint64_t bytes_got;            /* GetObject bytes returned */
} objc_memory_counts;

/* Lowers the per-part minimum so unit tests can use small parts (0 disables the check). */
int objc_memory_set_min_part_size(object_client *c, size_t min_part_size);
int objc_memory_stats(object_client *c, objc_memory_counts *out);
void objc_memory_reset_stats(object_client *c);
/* Copies an object out: *bytes malloc'd (free()), metadata initialised here (kv_list_free). Any out
 * pointer may be NULL. Returns 0, or -1 if the key does not exist (in-progress uploads do not). */
int objc_memory_get_object(object_client *c, const char *key, uint8_t **bytes, size_t *len, kv_list *metadata);
size_t objc_memory_object_count(object_client *c);
size_t objc_memory_upload_count(object_client *c);          /* multipart uploads not completed/aborted */
/* Sets an object's Last-Modified (e.g. to test age-based cleanup of uploads and mtime fallbacks). */
int objc_memory_set_last_modified(object_client *c, const char *key, time_t when);

#endif
