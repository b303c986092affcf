/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78). The hardware path runs three independent
 * _mm_crc32_u64 streams side by side (the instruction has a 3-cycle latency but issues every cycle)
 * and merges them with a carry-less multiply, so a single buffer checksums at several GB/s. The table
 * path serves CPUs without SSE4.2 (and non-x86 machines) and is the independent reference the tests
 * compare against. Only the functions marked with a target attribute may use SSE4.2/PCLMUL: the rest of
 * the library is built for the baseline CPU, so nothing runs those instructions before the runtime check. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#define CRC32C_HAVE_X86_HW 1
#include <nmmintrin.h>
#include <wmmintrin.h>
#else
#define CRC32C_HAVE_X86_HW 0
#endif

#include "base64.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u
/* Bytes per stream in the three-way loop: large enough that the merge cost is negligible, small enough
 * that 1 MiB buffers spend nearly all their time in it. */
#define CRC32C_STRIPE 4096

static uint32_t crc_table[8][256];
static uint32_t stripe_shift_1;    /* multiplier that moves a CRC register past CRC32C_STRIPE bytes */
static uint32_t stripe_shift_2;    /* ... past 2 * CRC32C_STRIPE bytes */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* a * b modulo P, both polynomials in the reflected bit order CRC registers use. */
static uint32_t gf2_multiply_mod(uint32_t a, uint32_t b)
{
    uint32_t product = 0;
    for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
        if (a & bit)
            product ^= b;
        b = (b & 1) ? (b >> 1) ^ CRC32C_POLY_REFLECTED : b >> 1;
    }
    return product;
}

/* x^n mod P in reflected order (x^0 is the top bit). */
static uint32_t x_power_mod(uint64_t n)
{
    uint32_t result = 1u << 31;
    uint32_t square = 1u << 30;              /* x^1 */
    while (n != 0) {
        if (n & 1)
            result = gf2_multiply_mod(result, square);
        square = gf2_multiply_mod(square, square);
        n >>= 1;
    }
    return result;
}

static void crc32c_init_tables(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t reg = byte;
        for (int i = 0; i < 8; i++)
            reg = (reg & 1) ? (reg >> 1) ^ CRC32C_POLY_REFLECTED : reg >> 1;
        crc_table[0][byte] = reg;
    }
    for (uint32_t byte = 0; byte < 256; byte++)
        for (int k = 1; k < 8; k++)
            crc_table[k][byte] = (crc_table[k - 1][byte] >> 8) ^ crc_table[0][crc_table[k - 1][byte] & 0xff];
    /* The merge multiplies with clmul (which yields the product times x in reflected order) and reduces
     * with crc32_u64 (which multiplies by x^32), so the constants are x^(8n - 33). */
    stripe_shift_1 = x_power_mod(8ull * CRC32C_STRIPE - 33);
    stripe_shift_2 = x_power_mod(16ull * CRC32C_STRIPE - 33);
}

/* Raw register update (no pre/post inversion), slicing by 8. */
static uint32_t crc32c_table_update(uint32_t reg, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= reg;         /* little-endian: the register lines up with the first four bytes */
        reg = crc_table[7][word & 0xff] ^ crc_table[6][(word >> 8) & 0xff] ^
              crc_table[5][(word >> 16) & 0xff] ^ crc_table[4][(word >> 24) & 0xff] ^
              crc_table[3][(word >> 32) & 0xff] ^ crc_table[2][(word >> 40) & 0xff] ^
              crc_table[1][(word >> 48) & 0xff] ^ crc_table[0][word >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        reg = (reg >> 8) ^ crc_table[0][(reg ^ *p++) & 0xff];
    return reg;
}

#if CRC32C_HAVE_X86_HW
__attribute__((target("sse4.2,pclmul")))
static uint32_t shift_register(uint32_t reg, uint32_t multiplier)
{
    __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)reg), _mm_cvtsi32_si128((int)multiplier), 0);
    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(product));
}

__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_hw_update(uint32_t reg, const uint8_t *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        reg = _mm_crc32_u8(reg, *p++);
        len--;
    }
    while (len >= 3 * CRC32C_STRIPE) {
        uint64_t a = reg, b = 0, c = 0;
        const uint8_t *pa = p, *pb = p + CRC32C_STRIPE, *pc = p + 2 * CRC32C_STRIPE;
        for (size_t i = 0; i < CRC32C_STRIPE; i += 8) {
            uint64_t wa, wb, wc;
            memcpy(&wa, pa + i, 8);
            memcpy(&wb, pb + i, 8);
            memcpy(&wc, pc + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            c = _mm_crc32_u64(c, wc);
        }
        /* The register is linear in its input: A's part moves past B and C, B's past C. */
        reg = shift_register((uint32_t)a, stripe_shift_2) ^ shift_register((uint32_t)b, stripe_shift_1) ^
              (uint32_t)c;
        p += 3 * CRC32C_STRIPE;
        len -= 3 * CRC32C_STRIPE;
    }
    uint64_t reg64 = reg;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        reg64 = _mm_crc32_u64(reg64, word);
        p += 8;
        len -= 8;
    }
    reg = (uint32_t)reg64;
    while (len--)
        reg = _mm_crc32_u8(reg, *p++);
    return reg;
}

int crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}
#else
/* No hardware path on this architecture: the table path serves every call. */
static uint32_t crc32c_hw_update(uint32_t reg, const uint8_t *p, size_t len)
{
    return crc32c_table_update(reg, p, len);
}

int crc32c_hw_available(void)
{
    return 0;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&tables_once, crc32c_init_tables);
    return ~crc32c_table_update(~crc, data, len);
}

uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&tables_once, crc32c_init_tables);
    return ~crc32c_hw_update(~crc, data, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    return crc32c_hw_available() ? crc32c_hw(crc, data, len) : crc32c_sw(crc, data, len);
}

/* Not on the product's path (see crc32c.h): the tests' independent check of the merge algebra. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    pthread_once(&tables_once, crc32c_init_tables);
    /* The pre/post inversions cancel: CRC(A||B) = CRC(A) * x^(8 len_b) xor CRC(B) for this CRC family. */
    return gf2_multiply_mod(x_power_mod(8 * len_b), crc_a) ^ crc_b;
}

void crc32c_base64(uint32_t crc, char out[9])
{
    const uint8_t big_endian[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    base64_encode(big_endian, sizeof(big_endian), out);
}
