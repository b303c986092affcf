/* sqlbackup_sim: a Windows console program that writes and reads a file the way SQL Server's
 * BACKUP/RESTORE TO DISK does, so that the s3csefs mount can be exercised under Wine with the exact
 * Win32 I/O pattern (unbuffered, write-through, overlapped, several 1 MiB requests in flight).
 *
 *   sqlbackup_sim write PATH SIZE SEED
 *   sqlbackup_sim write-compressed PATH ESTIMATE SIZE SEED
 *   sqlbackup_sim append PATH SIZE SEED
 *   sqlbackup_sim overwrite PATH SIZE SEED
 *   sqlbackup_sim read PATH SIZE SEED [OFFSET]
 *   sqlbackup_sim gen PATH SIZE SEED
 *
 * write: CREATE_ALWAYS, overlapped whole-sector writes, FlushFileBuffers, CloseHandle.
 * write-compressed: the compressed-backup pattern: extend the new file to ESTIMATE with
 *   SetFilePointerEx + SetEndOfFile, write SIZE bytes (rounded up to whole sectors, as an unbuffered
 *   writer must), then SetEndOfFile at SIZE.
 * append: BACKUP without INIT: open the existing file, read its first sector (the media header),
 *   write a second backup set starting at the current end of file (which must be sector aligned).
 * overwrite: WITH INIT onto an existing file, done in place: open without truncating (OPEN_ALWAYS),
 *   write the new set from offset 0 over the old content, then SetEndOfFile at SIZE (the end marker the
 *   SQL Server VDI specification asks disk-like devices to set when a shorter backup replaces a longer
 *   one).
 * read: RESTORE's pattern: unbuffered overlapped sequential reads of 1-4 MiB, then reads at random
 *   offsets; verifies SIZE bytes at OFFSET (default 0; without OFFSET the file size must equal SIZE).
 * gen: writes the expected content with plain buffered I/O (for comparing with decrypted objects).
 *
 * Content is a pure function of (SEED, offset within the set) so any byte can be checked: byte i of a
 * set is byte (i % 8) (little endian) of splitmix64(SEED * GOLDEN + i / 8). Bytes between SIZE and the
 * next sector boundary are zero (they are cut off by SetEndOfFile).
 *
 * Every Win32 failure is reported with the call, the offset and GetLastError(); exit status 0 on
 * success, 1 on a verification failure or I/O error, 2 on bad usage.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR_SIZE 512u
#define WRITE_CHUNK (1u << 20)
#define WRITES_IN_FLIGHT 8
#define READ_CHUNK_MAX (4u << 20)
#define READS_IN_FLIGHT 4
#define RANDOM_READS 64
#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static uint64_t splitmix64(uint64_t x)
{
    x += GOLDEN;
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static uint8_t content_byte(uint64_t seed, uint64_t offset)
{
    return (uint8_t)(splitmix64(seed * GOLDEN + offset / 8) >> (8 * (offset % 8)));
}

/* Fills buf with the set's bytes [offset, offset + len); bytes at or past set_size are zero. */
static void fill_content(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset, uint64_t set_size)
{
    size_t i = 0;
    while (i < len && offset + i < set_size && (offset + i) % 8 != 0) {
        buf[i] = content_byte(seed, offset + i);
        i++;
    }
    while (i + 8 <= len && offset + i + 8 <= set_size) {
        uint64_t word = splitmix64(seed * GOLDEN + (offset + i) / 8);
        for (int b = 0; b < 8; b++)
            buf[i + b] = (uint8_t)(word >> (8 * b));
        i += 8;
    }
    while (i < len && offset + i < set_size) {
        buf[i] = content_byte(seed, offset + i);
        i++;
    }
    if (i < len)
        memset(buf + i, 0, len - i);
}

static void report_win32(const char *call, const char *path, uint64_t offset)
{
    DWORD code = GetLastError();
    char message[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0,
                   message, sizeof message, NULL);
    for (char *p = message; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    fprintf(stderr, "sqlbackup_sim: %s failed on %s at offset %" PRIu64 ": Win32 error %lu (%s)\n",
            call, path, offset, (unsigned long)code, message);
}

static int parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *out = value;
    return 0;
}

static uint64_t round_up_to_sector(uint64_t n)
{
    return (n + SECTOR_SIZE - 1) / SECTOR_SIZE * SECTOR_SIZE;
}

static double seconds_now(void)
{
    LARGE_INTEGER counter, frequency;
    QueryPerformanceCounter(&counter);
    QueryPerformanceFrequency(&frequency);
    return (double)counter.QuadPart / (double)frequency.QuadPart;
}

static wchar_t *to_wide(const char *path)
{
    int n = MultiByteToWideChar(CP_ACP, 0, path, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    wchar_t *wide = calloc((size_t)n, sizeof *wide);
    if (wide && MultiByteToWideChar(CP_ACP, 0, path, -1, wide, n) != n) {
        free(wide);
        return NULL;
    }
    return wide;
}

/* The flags SQL Server's backup device uses for disk files. */
#define BACKUP_FLAGS (FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH | FILE_FLAG_OVERLAPPED)

static HANDLE open_backup_file(const char *path, DWORD access, DWORD disposition, DWORD flags)
{
    wchar_t *wide = to_wide(path);
    if (!wide) {
        fprintf(stderr, "sqlbackup_sim: cannot convert path %s\n", path);
        return INVALID_HANDLE_VALUE;
    }
    HANDLE h = CreateFileW(wide, access, FILE_SHARE_READ, NULL, disposition, flags, NULL);
    free(wide);
    if (h == INVALID_HANDLE_VALUE)
        report_win32("CreateFileW", path, 0);
    return h;
}

/* One in-flight request: a sector-aligned buffer (VirtualAlloc is page aligned) and its OVERLAPPED. */
struct io_slot {
    OVERLAPPED ov;
    uint8_t *buffer;
    DWORD length;
    uint64_t offset; /* absolute file offset */
    int busy;
};

static int slots_init(struct io_slot *slots, int count, size_t buffer_size)
{
    memset(slots, 0, sizeof *slots * (size_t)count); /* slots_free may run after a partial init */
    for (int i = 0; i < count; i++) {
        slots[i].buffer = VirtualAlloc(NULL, buffer_size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
        slots[i].ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!slots[i].buffer || !slots[i].ov.hEvent) {
            report_win32("VirtualAlloc/CreateEventW", "(memory)", 0);
            return -1;
        }
    }
    return 0;
}

static void slots_free(struct io_slot *slots, int count)
{
    for (int i = 0; i < count; i++) {
        if (slots[i].buffer)
            VirtualFree(slots[i].buffer, 0, MEM_RELEASE);
        if (slots[i].ov.hEvent)
            CloseHandle(slots[i].ov.hEvent);
    }
}

/* Waits for any busy slot to finish; returns its index, or -1 on error. *transferred gets the count. */
static int wait_any(HANDLE file, const char *path, struct io_slot *slots, int count, DWORD *transferred,
                    DWORD *error)
{
    HANDLE events[MAXIMUM_WAIT_OBJECTS];
    int index_of[MAXIMUM_WAIT_OBJECTS];
    int n = 0;
    for (int i = 0; i < count; i++)
        if (slots[i].busy) {
            events[n] = slots[i].ov.hEvent;
            index_of[n++] = i;
        }
    if (n == 0)
        return -1;
    DWORD which = WaitForMultipleObjects((DWORD)n, events, FALSE, INFINITE);
    if (which >= WAIT_OBJECT_0 + (DWORD)n) {
        report_win32("WaitForMultipleObjects", path, 0);
        return -1;
    }
    int slot = index_of[which - WAIT_OBJECT_0];
    slots[slot].busy = 0;
    *error = 0;
    if (!GetOverlappedResult(file, &slots[slot].ov, transferred, FALSE)) {
        *error = GetLastError();
        *transferred = 0;
    }
    return slot;
}

static void slot_prepare(struct io_slot *slot, uint64_t offset, DWORD length)
{
    HANDLE event = slot->ov.hEvent;
    memset(&slot->ov, 0, sizeof slot->ov);
    slot->ov.hEvent = event;
    slot->ov.Offset = (DWORD)offset;
    slot->ov.OffsetHigh = (DWORD)(offset >> 32);
    slot->offset = offset;
    slot->length = length;
    ResetEvent(event);
}

static int check_write_completion(const char *path, struct io_slot *slot, DWORD transferred, DWORD error)
{
    if (error != 0) {
        SetLastError(error);
        report_win32("WriteFile (overlapped completion)", path, slot->offset);
        return -1;
    }
    if (transferred != slot->length) {
        fprintf(stderr, "sqlbackup_sim: short write on %s at offset %" PRIu64 ": %lu of %lu bytes\n",
                path, slot->offset, (unsigned long)transferred, (unsigned long)slot->length);
        return -1;
    }
    return 0;
}

/* Writes one backup set of set_size bytes at file offset base: whole sectors, 1 MiB requests,
 * WRITES_IN_FLIGHT outstanding, in increasing offset order (as SQL Server issues them). */
static int write_set(HANDLE file, const char *path, uint64_t base, uint64_t set_size, uint64_t seed)
{
    struct io_slot slots[WRITES_IN_FLIGHT];
    int rc = -1;
    uint64_t padded = round_up_to_sector(set_size);
    if (slots_init(slots, WRITES_IN_FLIGHT, WRITE_CHUNK) != 0)
        goto out;
    for (uint64_t done = 0; done < padded;) {
        int slot = -1;
        for (int i = 0; i < WRITES_IN_FLIGHT; i++)
            if (!slots[i].busy) {
                slot = i;
                break;
            }
        if (slot < 0) {
            DWORD transferred, error;
            slot = wait_any(file, path, slots, WRITES_IN_FLIGHT, &transferred, &error);
            if (slot < 0 || check_write_completion(path, &slots[slot], transferred, error) != 0)
                goto drain;
        }
        DWORD length = (DWORD)(padded - done < WRITE_CHUNK ? padded - done : WRITE_CHUNK);
        fill_content(slots[slot].buffer, length, seed, done, set_size);
        slot_prepare(&slots[slot], base + done, length);
        if (!WriteFile(file, slots[slot].buffer, length, NULL, &slots[slot].ov) &&
            GetLastError() != ERROR_IO_PENDING) {
            report_win32("WriteFile", path, base + done);
            goto drain;
        }
        slots[slot].busy = 1;
        done += length;
    }
    rc = 0;
drain:
    for (;;) {
        DWORD transferred, error;
        int slot = wait_any(file, path, slots, WRITES_IN_FLIGHT, &transferred, &error);
        if (slot < 0)
            break;
        if (check_write_completion(path, &slots[slot], transferred, error) != 0)
            rc = -1;
    }
out:
    slots_free(slots, WRITES_IN_FLIGHT);
    return rc;
}

static int set_end_of_file(HANDLE file, const char *path, uint64_t size)
{
    LARGE_INTEGER position;
    position.QuadPart = (LONGLONG)size;
    if (!SetFilePointerEx(file, position, NULL, FILE_BEGIN)) {
        report_win32("SetFilePointerEx", path, size);
        return -1;
    }
    if (!SetEndOfFile(file)) {
        report_win32("SetEndOfFile", path, size);
        return -1;
    }
    return 0;
}

static int get_file_size(HANDLE file, const char *path, uint64_t *size)
{
    LARGE_INTEGER value;
    if (!GetFileSizeEx(file, &value)) {
        report_win32("GetFileSizeEx", path, 0);
        return -1;
    }
    *size = (uint64_t)value.QuadPart;
    return 0;
}

/* Flush and close, the end of every backup; a failure here is a failed backup. */
static int finish_backup(HANDLE file, const char *path, int rc)
{
    if (rc == 0 && !FlushFileBuffers(file)) {
        report_win32("FlushFileBuffers", path, 0);
        rc = -1;
    }
    if (!CloseHandle(file)) {
        report_win32("CloseHandle", path, 0);
        rc = -1;
    }
    return rc;
}

static void report_rate(const char *what, uint64_t bytes, double started)
{
    double elapsed = seconds_now() - started;
    printf("%s %" PRIu64 " bytes in %.2f s (%.1f MiB/s)\n", what, bytes, elapsed,
           elapsed > 0 ? (double)bytes / 1048576.0 / elapsed : 0.0);
}

enum write_kind { WRITE_NEW, WRITE_PREALLOCATED, WRITE_IN_PLACE };

static int do_write(const char *path, enum write_kind kind, uint64_t estimate, uint64_t size, uint64_t seed)
{
    double started = seconds_now();
    HANDLE file = open_backup_file(path, GENERIC_READ | GENERIC_WRITE,
                                   kind == WRITE_IN_PLACE ? OPEN_ALWAYS : CREATE_ALWAYS, BACKUP_FLAGS);
    if (file == INVALID_HANDLE_VALUE)
        return -1;
    int rc = 0;
    if (kind == WRITE_PREALLOCATED)
        rc = set_end_of_file(file, path, estimate);
    if (rc == 0)
        rc = write_set(file, path, 0, size, seed);
    /* Unbuffered writes cover whole sectors; the true end is set afterwards. The compressed and the
     * in-place patterns always set it (cutting back the estimate, or the old file's longer content). */
    if (rc == 0 && (kind != WRITE_NEW || round_up_to_sector(size) != size))
        rc = set_end_of_file(file, path, size);
    rc = finish_backup(file, path, rc);
    if (rc == 0)
        report_rate("wrote", size, started);
    return rc;
}

/* Reads `length` bytes at `offset` with one overlapped unbuffered request; returns bytes read or -1. */
static int64_t read_once(HANDLE file, const char *path, struct io_slot *slot, uint64_t offset, DWORD length)
{
    slot_prepare(slot, offset, length);
    DWORD transferred = 0;
    if (!ReadFile(file, slot->buffer, length, NULL, &slot->ov) && GetLastError() != ERROR_IO_PENDING) {
        if (GetLastError() == ERROR_HANDLE_EOF)
            return 0;
        report_win32("ReadFile", path, offset);
        return -1;
    }
    if (!GetOverlappedResult(file, &slot->ov, &transferred, TRUE)) {
        if (GetLastError() == ERROR_HANDLE_EOF)
            return 0;
        report_win32("ReadFile (overlapped completion)", path, offset);
        return -1;
    }
    return transferred;
}

static int do_append(const char *path, uint64_t size, uint64_t seed)
{
    double started = seconds_now();
    HANDLE file = open_backup_file(path, GENERIC_READ | GENERIC_WRITE, OPEN_EXISTING, BACKUP_FLAGS);
    if (file == INVALID_HANDLE_VALUE)
        return -1;
    uint64_t base = 0;
    int rc = get_file_size(file, path, &base);
    if (rc == 0 && base % SECTOR_SIZE != 0) {
        fprintf(stderr, "sqlbackup_sim: %s is %" PRIu64 " bytes, not whole sectors: cannot append unbuffered\n",
                path, base);
        rc = -1;
    }
    /* SQL Server reads the media header before it appends a set. */
    if (rc == 0 && base > 0) {
        struct io_slot header;
        if (slots_init(&header, 1, SECTOR_SIZE) != 0 || read_once(file, path, &header, 0, SECTOR_SIZE) != SECTOR_SIZE) {
            fprintf(stderr, "sqlbackup_sim: could not read the first sector of %s\n", path);
            rc = -1;
        }
        slots_free(&header, 1);
    }
    if (rc == 0)
        rc = write_set(file, path, base, size, seed);
    if (rc == 0 && round_up_to_sector(size) != size)
        rc = set_end_of_file(file, path, base + size);
    rc = finish_backup(file, path, rc);
    if (rc == 0) {
        printf("appended at offset %" PRIu64 "\n", base);
        report_rate("wrote", size, started);
    }
    return rc;
}

/* Compares `got` bytes read at absolute offset with the set (seed, base); reports the first mismatch. */
static int verify_bytes(const char *path, const uint8_t *got, size_t length, uint64_t seed, uint64_t base,
                        uint64_t offset, uint64_t set_size, uint8_t *expected)
{
    fill_content(expected, length, seed, offset - base, set_size);
    if (memcmp(got, expected, length) == 0)
        return 0;
    for (size_t i = 0; i < length; i++)
        if (got[i] != expected[i]) {
            fprintf(stderr, "sqlbackup_sim: %s differs at offset %" PRIu64 ": read 0x%02x, expected 0x%02x\n",
                    path, offset + i, got[i], expected[i]);
            break;
        }
    return -1;
}

static int do_read(const char *path, uint64_t size, uint64_t seed, uint64_t base, int exact_size)
{
    double started = seconds_now();
    struct io_slot slots[READS_IN_FLIGHT];
    uint8_t *expected = NULL;
    int rc = -1;
    if (base % SECTOR_SIZE != 0) {
        fprintf(stderr, "sqlbackup_sim: OFFSET must be a multiple of %u\n", SECTOR_SIZE);
        return -1;
    }
    HANDLE file = open_backup_file(path, GENERIC_READ, OPEN_EXISTING,
                                   FILE_FLAG_NO_BUFFERING | FILE_FLAG_OVERLAPPED | FILE_FLAG_SEQUENTIAL_SCAN);
    if (file == INVALID_HANDLE_VALUE)
        return -1;
    if (slots_init(slots, READS_IN_FLIGHT, READ_CHUNK_MAX) != 0)
        goto out;
    expected = malloc(READ_CHUNK_MAX);
    uint64_t file_size = 0;
    if (!expected || get_file_size(file, path, &file_size) != 0)
        goto out;
    if (exact_size ? file_size != base + size : file_size < base + size) {
        fprintf(stderr, "sqlbackup_sim: %s is %" PRIu64 " bytes, expected %s%" PRIu64 "\n", path, file_size,
                exact_size ? "" : "at least ", base + size);
        goto out;
    }
    uint64_t end = base + size;

    /* Sequential pass: request sizes cycle 1, 2, 4 MiB, READS_IN_FLIGHT outstanding. */
    static const DWORD chunk_sizes[] = {1u << 20, 2u << 20, 4u << 20};
    unsigned next_chunk = 0;
    uint64_t issued = base, verified = 0;
    int failed = 0;
    while (!failed && (issued < end || verified < size)) {
        int slot = -1;
        for (int i = 0; i < READS_IN_FLIGHT && issued < end; i++)
            if (!slots[i].busy) {
                slot = i;
                break;
            }
        if (slot >= 0) {
            uint64_t want = end - issued;
            DWORD length = chunk_sizes[next_chunk++ % 3];
            if (want < length)
                length = (DWORD)round_up_to_sector(want);
            slot_prepare(&slots[slot], issued, length);
            if (!ReadFile(file, slots[slot].buffer, length, NULL, &slots[slot].ov) &&
                GetLastError() != ERROR_IO_PENDING) {
                report_win32("ReadFile", path, issued);
                failed = 1;
                break;
            }
            slots[slot].busy = 1;
            issued += length;
            continue;
        }
        DWORD transferred, error;
        slot = wait_any(file, path, slots, READS_IN_FLIGHT, &transferred, &error);
        if (slot < 0) {
            failed = 1;
            break;
        }
        uint64_t expect = end - slots[slot].offset < slots[slot].length ? end - slots[slot].offset
                                                                           : slots[slot].length;
        /* At the end of the file a read may return fewer bytes than requested, but never fewer than
         * the file holds (the file may be longer than the set when verifying a first set). */
        if (error != 0 && !(error == ERROR_HANDLE_EOF && expect == 0)) {
            SetLastError(error);
            report_win32("ReadFile (overlapped completion)", path, slots[slot].offset);
            failed = 1;
        } else if (transferred < expect) {
            fprintf(stderr, "sqlbackup_sim: short read on %s at offset %" PRIu64 ": %lu bytes, expected %" PRIu64 "\n",
                    path, slots[slot].offset, (unsigned long)transferred, expect);
            failed = 1;
        } else if (verify_bytes(path, slots[slot].buffer, (size_t)expect, seed, base, slots[slot].offset, size,
                                expected) != 0) {
            failed = 1;
        }
        verified += expect;
    }
    for (;;) { /* let outstanding requests finish before the buffers go away */
        DWORD transferred, error;
        if (wait_any(file, path, slots, READS_IN_FLIGHT, &transferred, &error) < 0)
            break;
    }
    if (failed)
        goto out;
    report_rate("read sequentially", size, started);

    /* Random pass: sector-aligned offsets and lengths (512 B .. 256 KiB), like RESTORE's header and
     * page lookups; deterministic from the seed. */
    uint64_t state = seed ^ UINT64_C(0xD1B54A32D192ED03);
    for (int n = 0; n < RANDOM_READS && size > 0; n++) {
        state = splitmix64(state);
        uint64_t sectors = (size + SECTOR_SIZE - 1) / SECTOR_SIZE;
        uint64_t offset = base + (state % sectors) * SECTOR_SIZE;
        DWORD length = (DWORD)(((state >> 40) % 512 + 1) * SECTOR_SIZE);
        int64_t got = read_once(file, path, &slots[0], offset, length);
        uint64_t expect = end - offset < length ? end - offset : length;
        if (got < 0 || (uint64_t)got < expect) {
            fprintf(stderr, "sqlbackup_sim: random read of %lu at %" PRIu64 " returned %" PRId64 " bytes\n",
                    (unsigned long)length, offset, got);
            goto out;
        }
        if (verify_bytes(path, slots[0].buffer, (size_t)expect, seed, base, offset, size, expected) != 0)
            goto out;
    }
    printf("verified %" PRIu64 " bytes at offset %" PRIu64 " and %d random reads\n", size, base, RANDOM_READS);
    rc = 0;
out:
    slots_free(slots, READS_IN_FLIGHT);
    free(expected);
    if (!CloseHandle(file)) {
        report_win32("CloseHandle", path, 0);
        rc = -1;
    }
    return rc;
}

/* The expected content through plain buffered I/O, independent of the unbuffered write path. */
static int do_gen(const char *path, uint64_t size, uint64_t seed)
{
    HANDLE file = open_backup_file(path, GENERIC_WRITE, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL);
    if (file == INVALID_HANDLE_VALUE)
        return -1;
    uint8_t *buffer = malloc(WRITE_CHUNK);
    int rc = buffer ? 0 : -1;
    for (uint64_t done = 0; rc == 0 && done < size;) {
        DWORD length = (DWORD)(size - done < WRITE_CHUNK ? size - done : WRITE_CHUNK), written = 0;
        fill_content(buffer, length, seed, done, size);
        if (!WriteFile(file, buffer, length, &written, NULL) || written != length) {
            report_win32("WriteFile", path, done);
            rc = -1;
        }
        done += length;
    }
    free(buffer);
    if (!CloseHandle(file)) {
        report_win32("CloseHandle", path, 0);
        rc = -1;
    }
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: sqlbackup_sim write PATH SIZE SEED\n"
                    "       sqlbackup_sim write-compressed PATH ESTIMATE SIZE SEED\n"
                    "       sqlbackup_sim append PATH SIZE SEED\n"
                    "       sqlbackup_sim overwrite PATH SIZE SEED\n"
                    "       sqlbackup_sim read PATH SIZE SEED [OFFSET]\n"
                    "       sqlbackup_sim gen PATH SIZE SEED\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    int rc;
    if (strcmp(mode, "write-compressed") == 0) {
        if (argc != 6 || parse_u64(argv[3], &a) || parse_u64(argv[4], &b) || parse_u64(argv[5], &c))
            return usage();
        rc = do_write(argv[2], WRITE_PREALLOCATED, a, b, c);
    } else if (strcmp(mode, "read") == 0) {
        if ((argc != 5 && argc != 6) || parse_u64(argv[3], &a) || parse_u64(argv[4], &b) ||
            (argc == 6 && parse_u64(argv[5], &d)))
            return usage();
        rc = do_read(argv[2], a, b, d, argc == 5);
    } else if (strcmp(mode, "write") == 0 || strcmp(mode, "overwrite") == 0 || strcmp(mode, "append") == 0 ||
               strcmp(mode, "gen") == 0) {
        if (argc != 5 || parse_u64(argv[3], &a) || parse_u64(argv[4], &b))
            return usage();
        if (strcmp(mode, "write") == 0)
            rc = do_write(argv[2], WRITE_NEW, 0, a, b);
        else if (strcmp(mode, "overwrite") == 0)
            rc = do_write(argv[2], WRITE_IN_PLACE, 0, a, b);
        else if (strcmp(mode, "append") == 0)
            rc = do_append(argv[2], a, b);
        else
            rc = do_gen(argv[2], a, b);
    } else {
        return usage();
    }
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}
