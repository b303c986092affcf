/* Unit tests of the small crypto building blocks: CRC32C (RFC 3720 / iSCSI known answers, hardware vs
 * table, combine), strict base64 (RFC 4648 vectors and every rejection rule), kv_list, secure_buf and
 * cse_strerror. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base64.h"
#include "crc32c.h"
#include "cse_status.h"
#include "kvlist.h"
#include "secure_mem.h"

/* Bit-at-a-time CRC32C written from the polynomial definition: the slowest, most obvious reference. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void test_crc32c_known_answers(void **state)
{
    (void)state;
    uint8_t buf[32];
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);    /* RFC 3720 B.4, descending */
    assert_int_equal(crc32c(0, buf, 0), 0);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
}

static void test_crc32c_paths_agree(void **state)
{
    (void)state;
    size_t size = (1u << 20) + 64;
    uint8_t *data = malloc(size);
    assert_non_null(data);
    srand(12345);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)rand();
    const size_t lengths[] = {0, 1, 3, 7, 8, 9, 15, 31, 255, 4095, 12287, 12288, 12289, 3 * 4096 * 5 + 13,
                              (1u << 20) + 7};
    for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++) {
        for (size_t align = 0; align < 8; align += 3) {
            const uint8_t *p = data + align;
            size_t len = lengths[li];
            uint32_t reference = crc32c_bitwise(p, len);
            assert_int_equal(crc32c_sw(0, p, len), reference);
            assert_int_equal(crc32c(0, p, len), reference);
            if (crc32c_hw_available())
                assert_int_equal(crc32c_hw(0, p, len), reference);
        }
    }
    for (int round = 0; round < 200; round++) {
        size_t align = (size_t)rand() % 64;
        size_t len = (size_t)rand() % (size - 64);
        const uint8_t *p = data + align;
        uint32_t expected = crc32c_sw(0, p, len);
        if (crc32c_hw_available())
            assert_int_equal(crc32c_hw(0, p, len), expected);
        /* Continuation and combination must both reproduce the CRC of the whole. */
        size_t cut = len ? (size_t)rand() % len : 0;
        assert_int_equal(crc32c(crc32c(0, p, cut), p + cut, len - cut), expected);
        assert_int_equal(crc32c_combine(crc32c(0, p, cut), crc32c(0, p + cut, len - cut), len - cut), expected);
    }
    free(data);
}

static void test_crc32c_base64(void **state)
{
    (void)state;
    char out[9];
    crc32c_base64(0xE3069283u, out);       /* bytes e3 06 92 83 */
    assert_string_equal(out, "4waSgw==");
    crc32c_base64(0, out);
    assert_string_equal(out, "AAAAAA==");
}

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    const char *raw[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *encoded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t n = base64_encode((const uint8_t *)raw[i], strlen(raw[i]), out);
        assert_int_equal(n, strlen(encoded[i]));
        assert_int_equal(base64_encoded_len(strlen(raw[i])), n);
        assert_string_equal(out, encoded[i]);
        uint8_t back[16];
        size_t back_len = 99;
        assert_int_equal(base64_decode(encoded[i], strlen(encoded[i]), back, &back_len), 0);
        assert_int_equal(back_len, strlen(raw[i]));
        assert_memory_equal(back, raw[i], back_len);
    }
    uint8_t all[256], back[256];
    char text[400];
    size_t back_len;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    size_t n = base64_encode(all, 256, text);
    assert_int_equal(base64_decode(text, n, back, &back_len), 0);
    assert_int_equal(back_len, 256);
    assert_memory_equal(all, back, 256);
    assert_non_null(strchr(text, '+'));
    assert_non_null(strchr(text, '/'));
}

static void test_base64_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "Zg=",       /* length not a multiple of 4 */
        "Zg",        /* unpadded */
        "Zm9v\n",    /* whitespace */
        "Zm 9",      /* space */
        "Zm9-",      /* URL-safe alphabet */
        "Zm9_",
        "Z===",      /* three pad characters */
        "====",
        "Zg==Zg==",  /* padding in the middle */
        "Zm=v",      /* symbol after '=' */
        "Zh==",      /* non-zero unused bits (non-canonical) */
        "Zm9=",      /* non-zero unused bits */
        "Zm9v\0AAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[16];
        size_t out_len;
        size_t len = i == sizeof(bad) / sizeof(bad[0]) - 1 ? 8 : strlen(bad[i]);
        assert_int_equal(base64_decode(bad[i], len, out, &out_len), -1);
    }
}

static void test_kvlist_operations(void **state)
{
    (void)state;
    kv_list a, b;
    kv_list_init(&a);
    kv_list_init(&b);
    assert_int_equal(kv_list_add(&a, "Name", "1"), 0);
    assert_int_equal(kv_list_add(&a, "other", "2"), 0);
    for (int i = 0; i < 40; i++) {                 /* forces growth */
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(kv_list_add(&a, name, name), 0);
    }
    assert_int_equal(a.count, 42);
    assert_string_equal(kv_list_get(&a, "Name"), "1");
    assert_null(kv_list_get(&a, "name"));
    assert_string_equal(kv_list_get_ci(&a, "NAME"), "1");
    assert_int_equal(kv_list_set(&a, "other", "3"), 0);
    assert_string_equal(kv_list_get(&a, "other"), "3");
    assert_int_equal(kv_list_set(&a, "new", "4"), 0);
    assert_int_equal(a.count, 43);
    assert_string_equal(a.items[1].name, "other");     /* order kept */
    assert_int_equal(kv_list_remove(&a, "k5"), 1);
    assert_int_equal(kv_list_remove(&a, "k5"), 0);
    assert_int_equal(a.count, 42);
    assert_string_equal(a.items[7].name, "k6");
    assert_int_equal(kv_list_copy(&b, &a), 0);
    assert_true(kv_list_equal(&a, &b));
    /* Equality ignores order but not values or extra names. */
    kv_list c;
    kv_list_init(&c);
    for (size_t i = b.count; i-- > 0;)
        assert_int_equal(kv_list_add(&c, b.items[i].name, b.items[i].value), 0);
    assert_true(kv_list_equal(&a, &c));
    assert_int_equal(kv_list_set(&c, "k6", "changed"), 0);
    assert_false(kv_list_equal(&a, &c));
    assert_int_equal(kv_list_add(&b, "extra", "x"), 0);
    assert_false(kv_list_equal(&a, &b));
    assert_int_equal(kv_list_add(&a, NULL, "x"), -1);
    kv_list_free(&a);
    kv_list_free(&b);
    kv_list_free(&c);
    assert_int_equal(a.count, 0);
    assert_null(kv_list_get(&a, "Name"));
    assert_int_equal(kv_list_add(&a, "reuse", "ok"), 0);    /* reusable after free */
    kv_list_free(&a);
}

static void test_secure_buf(void **state)
{
    (void)state;
    secure_buf *buf = secure_buf_new(32);
    assert_non_null(buf);
    assert_int_equal(buf->len, 32);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(buf->bytes[i], 0);
    assert_int_equal((uintptr_t)buf->bytes % 4096, 0);
    secure_buf_free(buf);

    const uint8_t key[5] = {1, 2, 3, 4, 5};
    buf = secure_buf_from(key, sizeof(key));
    assert_non_null(buf);
    assert_memory_equal(buf->bytes, key, sizeof(key));
    secure_buf_free(buf);
    secure_buf_free(NULL);

    buf = secure_buf_new(0);
    assert_non_null(buf);
    secure_buf_free(buf);

    /* Without lockable memory the buffer still works and reports locked = 0. Checked in a child that
     * drops RLIMIT_MEMLOCK to zero and, when running as root (which may always lock), its privileges. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct rlimit zero = {0, 0};
        if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0)
            _exit(10);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(11);
        secure_buf *unlocked = secure_buf_new(64);
        if (unlocked == NULL)
            _exit(12);
#ifndef __SANITIZE_ADDRESS__          /* ASan intercepts mlock() and always reports success */
        if (unlocked->locked != 0)
            _exit(13);
#endif
        unlocked->bytes[63] = 7;
        secure_buf_free(unlocked);
        _exit(0);
    }
    int child_status = 0;
    assert_int_equal(waitpid(child, &child_status, 0), child);
    assert_true(WIFEXITED(child_status));
    assert_int_equal(WEXITSTATUS(child_status), 0);
    /* And the normal case here does lock (root, or a default RLIMIT_MEMLOCK above one page). */
    buf = secure_buf_new(16);
    assert_non_null(buf);
    assert_int_equal(buf->locked, 1);
    secure_buf_free(buf);
    uint8_t plain[8] = {9, 9, 9, 9, 9, 9, 9, 9}, zeros[8] = {0};
    secure_wipe(plain, sizeof(plain));
    assert_memory_equal(plain, zeros, sizeof(zeros));
    secure_wipe(NULL, 4);
}

static void test_strerror_covers_every_status(void **state)
{
    (void)state;
    for (int s = 0; s < CSE_STATUS_COUNT; s++) {
        const char *text = cse_strerror((cse_status)s);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown crypto status");
        for (int t = 0; t < s; t++)
            assert_string_not_equal(text, cse_strerror((cse_status)t));
    }
    for (int s = 0; s < CSE_STATUS_COUNT; s++) {
        const char *name = cse_status_name((cse_status)s);
        assert_int_equal(strncmp(name, "CSE_", 4), 0);
        assert_string_not_equal(name, "CSE_UNKNOWN");
        for (int t = 0; t < s; t++)
            assert_string_not_equal(name, cse_status_name((cse_status)t));
    }
    assert_string_equal(cse_status_name(CSE_ERR_BAD_BASE64), "CSE_ERR_BAD_BASE64");
    assert_string_equal(cse_status_name(CSE_STATUS_COUNT), "CSE_UNKNOWN");
    assert_string_equal(cse_strerror(CSE_STATUS_COUNT), "unknown crypto status");
    assert_string_equal(cse_strerror((cse_status)-1), "unknown crypto status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answers),
        cmocka_unit_test(test_crc32c_paths_agree),
        cmocka_unit_test(test_crc32c_base64),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_rejects_malformed),
        cmocka_unit_test(test_kvlist_operations),
        cmocka_unit_test(test_secure_buf),
        cmocka_unit_test(test_strerror_covers_every_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
