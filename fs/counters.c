/* Formats the live counters for the status view. The table below is the single list of counters and
 * their public names: adding a counter is adding the field to fs_counters and one line here. */
#include "counters.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct {
    const char *name;
    size_t offset;
} counter_field;

#define COUNTER(field) { #field, offsetof(fs_counters, field) }
static const counter_field counter_fields[] = {
    COUNTER(bytes_written_plain),
    COUNTER(bytes_uploaded),
    COUNTER(bytes_read_plain),
    COUNTER(bytes_fetched),
    COUNTER(uploads_started),
    COUNTER(uploads_completed),
    COUNTER(uploads_failed),
    COUNTER(parts_uploaded),
    COUNTER(parts_in_flight),
    COUNTER(spool_fallbacks),
    COUNTER(spool_bytes),
    COUNTER(kms_generate_calls),
    COUNTER(kms_decrypt_calls),
    COUNTER(key_cache_hits),
    COUNTER(s3_requests),
    COUNTER(s3_retries),
    COUNTER(s3_errors),
    COUNTER(decrypt_errors),
    COUNTER(window_parked_bytes),
    COUNTER(heap_trims),
    COUNTER(open_files),
};
#undef COUNTER

/* Appends to out at *len, never past cap-1; *len tracks what was actually written. */
static void append(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t room = cap - *len - 1;
    *len += (size_t)n > room ? room : (size_t)n;
}

size_t fs_counters_format(const fs_counters *c, uint64_t mem_used, uint64_t mem_limit, uint64_t mem_peak,
                          char *out, size_t cap)
{
    if (!out || cap == 0)
        return 0;
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; c && i < sizeof counter_fields / sizeof counter_fields[0]; i++) {
        const _Atomic uint64_t *field =
            (const _Atomic uint64_t *)((const char *)c + counter_fields[i].offset);
        uint64_t value = atomic_load_explicit(field, memory_order_relaxed);
        append(out, cap, &len, "%s %llu\n", counter_fields[i].name, (unsigned long long)value);
    }
    append(out, cap, &len, "memory_used %llu\n", (unsigned long long)mem_used);
    append(out, cap, &len, "memory_limit %llu\n", (unsigned long long)mem_limit);
    append(out, cap, &len, "memory_peak %llu\n", (unsigned long long)mem_peak);
    return len;
}
