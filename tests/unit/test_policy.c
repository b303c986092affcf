/* Encryption policy: which names are encrypted under encrypt=, including the rsync temp-name rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"

static void test_default_bak(void **state)
{
    (void)state;
    assert_int_equal(policy_should_encrypt("*.bak", "/db.bak"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/dir/sub/DB.BAK"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/Db.Bak"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/.hidden.bak"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/db.bak.txt"), 0);
    assert_int_equal(policy_should_encrypt("*.bak", "/db.trn"), 0);
    assert_int_equal(policy_should_encrypt("*.bak", "/bak"), 0);
    assert_int_equal(policy_should_encrypt("*.bak", "/x.bak/file"), 0);   /* the directory name does not count */
}

static void test_lists_all_none(void **state)
{
    (void)state;
    assert_int_equal(policy_should_encrypt("*.bak:*.trn", "/log.TRN"), 1);
    assert_int_equal(policy_should_encrypt("*.bak:*.trn", "/x.bak"), 1);
    assert_int_equal(policy_should_encrypt("*.bak:*.trn", "/x.txt"), 0);
    assert_int_equal(policy_should_encrypt("all", "/anything"), 1);
    assert_int_equal(policy_should_encrypt("ALL", "/anything"), 1);
    assert_int_equal(policy_should_encrypt("none", "/db.bak"), 0);
    assert_int_equal(policy_should_encrypt("backup?-of-*.bak", "/backup1-of-4.bak"), 1);
    assert_int_equal(policy_should_encrypt("backup?-of-*.bak", "/backup10-of-10.bak"), 0);
}

static void test_rsync_temp_names(void **state)
{
    (void)state;
    assert_int_equal(policy_should_encrypt("*.bak", "/dir/.db.bak.a1B2c3"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/.DB.BAK.xyzXYZ"), 1);
    assert_int_equal(policy_should_encrypt("*.bak", "/.db.txt.a1B2c3"), 0);
    /* Not the shape: suffix length other than 6, or no leading dot. */
    assert_int_equal(policy_should_encrypt("*.bak", "/.db.bak.a1B2c"), 0);
    assert_int_equal(policy_should_encrypt("*.bak", "/.db.bak.a1B2c3d"), 0);
    assert_int_equal(policy_should_encrypt("*.bak", "/db.bak.a1B2c3"), 0);
}

static void test_validate(void **state)
{
    (void)state;
    assert_int_equal(policy_validate("*.bak"), 0);
    assert_int_equal(policy_validate("*.bak:*.trn"), 0);
    assert_int_equal(policy_validate("all"), 0);
    assert_int_equal(policy_validate("none"), 0);
    assert_int_equal(policy_validate(""), -1);
    assert_int_equal(policy_validate("*.bak::*.trn"), -1);
    assert_int_equal(policy_validate("*.bak:"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_bak),
        cmocka_unit_test(test_lists_all_none),
        cmocka_unit_test(test_rsync_temp_names),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
