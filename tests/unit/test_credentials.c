/* The credentials chain without a network: environment source, shared files (profiles, precedence of the
 * credentials file, "[profile x]" in config, no HOME), configuration errors of role profiles, the JSON and
 * STS XML parsers, and the provider's cache/refresh logic under concurrency (through the test hook).
 * Every test switches IMDS off and clears ECS variables so nothing leaves the machine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws_session.h"
#include "credentials.h"
#include "credentials_sources.h"
#include "sts.h"

static const char *const aws_variables[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_STS",
};

static char tmpdir[64];
static char saved_home[1024];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(aws_variables) / sizeof(aws_variables[0]); i++)
        unsetenv(aws_variables[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_credentials_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    /* HOME points at an empty directory so a developer's real ~/.aws never leaks into a test. */
    const char *home = getenv("HOME");
    snprintf(saved_home, sizeof(saved_home), "%s", home ? home : "");
    setenv("HOME", tmpdir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    if (saved_home[0])
        setenv("HOME", saved_home, 1);
    return 0;
}

static void write_file(const char *name, const char *text, char *path_out, size_t cap)
{
    snprintf(path_out, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path_out, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static aws_session *new_session(aws_config *cfg)
{
    aws_error err;
    aws_session *s = aws_session_new(cfg, &err);
    if (!s) {
        char buf[512];
        fail_msg("aws_session_new: %s", aws_error_format(&err, buf, sizeof(buf)));
    }
    return s;
}

static void test_env_source(void **state)
{
    (void)state;
    aws_credentials c;
    aws_error err;
    assert_int_equal(credentials_from_env(&c, &err), CREDENTIALS_NOT_CONFIGURED);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    assert_int_equal(credentials_from_env(&c, &err), AWS_ERR_CREDENTIALS);   /* half a key pair */
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    assert_int_equal(credentials_from_env(&c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_string_equal(c.secret_access_key, "envsecret");
    assert_string_equal(c.session_token, "envtoken");
    assert_string_equal(c.source, "env");
    assert_int_equal(c.expiration, 0);

    /* The environment wins over a profile that is also configured. */
    char creds_path[256];
    write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n", creds_path,
               sizeof(creds_path));
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.credentials_file, sizeof(cfg.credentials_file), "%s", creds_path);
    aws_session *s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDENV");
    sigv4_credentials sc;
    credentials_as_sigv4(&c, &sc);
    assert_string_equal(sc.session_token, "envtoken");
    aws_session_free(s);

    /* ... unless a profile is chosen explicitly (mount option), as with aws --profile */
    snprintf(cfg.profile, sizeof(cfg.profile), "default");
    s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDFILE");
    assert_string_equal(c.source, "profile");
    assert_string_equal(c.session_token, "");
    aws_session_free(s);
    /* AWS_PROFILE is not such an explicit choice */
    setenv("AWS_PROFILE", "default", 1);
    aws_config_defaults(&cfg);
    snprintf(cfg.credentials_file, sizeof(cfg.credentials_file), "%s", creds_path);
    s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDENV");
    aws_session_free(s);
}

static void test_profile_from_files_without_home(void **state)
{
    (void)state;
    char creds_path[256], config_path[256];
    write_file("creds",
               "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = defaultsecret\n"
               "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = worksecret\n"
               "aws_session_token = worktoken\n",
               creds_path, sizeof(creds_path));
    write_file("conf",
               "[profile work]\nregion = eu-west-3\naws_access_key_id = AKIDIGNORED\n"
               "[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfgsecret\n"
               "[bare]\naws_access_key_id = AKIDBARE\naws_secret_access_key = baresecret\n",
               config_path, sizeof(config_path));
    unsetenv("HOME");

    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.credentials_file, sizeof(cfg.credentials_file), "%s", creds_path);
    snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", config_path);
    snprintf(cfg.profile, sizeof(cfg.profile), "work");
    aws_session *s = new_session(&cfg);
    aws_credentials c;
    aws_error err;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    /* credentials file beats config file for the same profile; region comes from the config file */
    assert_string_equal(c.access_key_id, "AKIDWORK");
    assert_string_equal(c.secret_access_key, "worksecret");
    assert_string_equal(c.session_token, "worktoken");
    assert_string_equal(c.source, "profile");
    assert_string_equal(s->config.region, "eu-west-3");
    aws_session_free(s);

    /* keys may live in the config file alone, under [profile name] */
    snprintf(cfg.profile, sizeof(cfg.profile), "cfgonly");
    s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDCFG");
    assert_string_equal(s->config.region, "us-east-1");
    aws_session_free(s);

    /* "[bare]" in the config file is not profile "bare": a named profile that is missing is an error */
    snprintf(cfg.profile, sizeof(cfg.profile), "bare");
    s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_CONFIG);
    assert_non_null(strstr(err.message, "bare"));
    aws_session_free(s);

    /* the variables work as well as the options, and AWS_PROFILE picks the profile */
    aws_config_defaults(&cfg);
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
    setenv("AWS_CONFIG_FILE", config_path, 1);
    s = new_session(&cfg);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDDEFAULT");
    aws_session_free(s);
    setenv("AWS_PROFILE", "work", 1);
    s = new_session(&cfg);
    assert_string_equal(s->config.profile, "work");
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDWORK");
    aws_session_free(s);
}

static void test_home_default_paths(void **state)
{
    (void)state;
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/.aws", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = h\n", path,
               sizeof(path));
    write_file(".aws/config", "[default]\nregion = ap-south-1\n", path, sizeof(path));
    aws_config cfg;
    aws_config_defaults(&cfg);
    aws_session *s = new_session(&cfg);
    aws_credentials c;
    aws_error err;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKIDHOME");
    assert_string_equal(s->config.region, "ap-south-1");
    snprintf(path, sizeof(path), "%s/.aws/credentials", tmpdir);
    assert_string_equal(s->config.credentials_file, path);
    aws_session_free(s);
}

static void test_nothing_configured(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    aws_session *s = new_session(&cfg);
    aws_credentials c;
    aws_error err;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "no AWS credentials"));
    aws_session_free(s);
}

static void test_role_profile_errors(void **state)
{
    (void)state;
    char config_path[256];
    write_file("conf",
               "[profile nosource]\nrole_arn = arn:aws:iam::123456789012:role/r\n"
               "[profile both]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = x\n"
               "credential_source = Environment\n"
               "[profile badsource]\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = Moon\n"
               "[profile envsource]\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = Environment\n"
               "[profile missingsrc]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = ghost\n"
               "[profile emptysrc]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = empty\n"
               "[profile empty]\nregion = us-east-2\n"
               "[profile loop1]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop2\n"
               "[profile loop2]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop1\n",
               config_path, sizeof(config_path));
    static const struct {
        const char *profile;
        aws_err_kind expected;
    } cases[] = {
        { "nosource", AWS_ERR_CONFIG },      { "both", AWS_ERR_CONFIG },
        { "badsource", AWS_ERR_CONFIG },     { "envsource", AWS_ERR_CREDENTIALS },
        { "missingsrc", AWS_ERR_CONFIG },    { "emptysrc", AWS_ERR_CREDENTIALS },
        { "loop1", AWS_ERR_CONFIG },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        aws_config cfg;
        aws_config_defaults(&cfg);
        snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", config_path);
        snprintf(cfg.profile, sizeof(cfg.profile), "%s", cases[i].profile);
        aws_session *s = new_session(&cfg);
        aws_credentials c;
        aws_error err;
        int rc = credentials_get(s->credentials, &c, &err);
        if (rc != (int)cases[i].expected)
            fail_msg("profile %s: got %d (%s), expected %d", cases[i].profile, rc, err.message, cases[i].expected);
        aws_session_free(s);
    }
}

static void test_parse_time(void **state)
{
    (void)state;
    /* 2015-08-30T12:36:00Z is 1440938160 (date -u -d 2015-08-30T12:36:00Z +%s) */
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00Z"), 1440938160);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00.123456Z"), 1440938160);
    assert_int_equal(credentials_parse_time("2015-08-30T14:36:00+02:00"), 1440938160);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00"), 1440938160);
    assert_int_equal(credentials_parse_time("yesterday"), -1);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00Zjunk"), -1);
    assert_int_equal(credentials_parse_time(NULL), -1);
    assert_int_equal(credentials_parse_time("2015-08-30T07:06:00-05:30"), 1440938160);
    /* Offsets must be exactly [+-]DD:DD. The buffer goes on with NULs past the text, so a parser that
     * skipped 6 bytes after a short offset would land on a NUL and accept it (review finding 12). */
    char short_offset[40] = "2015-08-30T12:36:00+1:2";
    assert_int_equal(credentials_parse_time(short_offset), -1);
    char short_minutes[40] = "2015-08-30T12:36:00+01:2";
    assert_int_equal(credentials_parse_time(short_minutes), -1);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00+0100"), -1);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00+01:00x"), -1);
    assert_int_equal(credentials_parse_time("2015-08-30T12:36:00+ 1:00"), -1);
}

static void test_parse_json(void **state)
{
    (void)state;
    aws_credentials c;
    aws_error err;
    const char *doc = "{\"Code\":\"Success\",\"LastUpdated\":\"2015-08-30T12:00:00Z\",\"Type\":\"AWS-HMAC\","
                      "\"AccessKeyId\":\"ASIAJSON\",\"SecretAccessKey\":\"jsonsecret\",\"Token\":\"jsontoken\","
                      "\"Expiration\":\"2015-08-30T12:36:00Z\"}";
    assert_int_equal(credentials_parse_json(doc, strlen(doc), &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "ASIAJSON");
    assert_string_equal(c.secret_access_key, "jsonsecret");
    assert_string_equal(c.session_token, "jsontoken");
    assert_int_equal(c.expiration, 1440938160);

    const char *failed = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\"}";
    assert_int_equal(credentials_parse_json(failed, strlen(failed), &c, &err), AWS_ERR_CREDENTIALS);
    const char *partial = "{\"AccessKeyId\":\"A\"}";
    assert_int_equal(credentials_parse_json(partial, strlen(partial), &c, &err), AWS_ERR_PARSE);
    assert_int_equal(credentials_parse_json("not json", 8, &c, &err), AWS_ERR_PARSE);
}

static void test_parse_sts_xml(void **state)
{
    (void)state;
    /* Shape of the documented AssumeRole answer. */
    const char *xml =
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <AssumeRoleResult>\n"
        "    <SourceIdentity>DevUser123</SourceIdentity>\n"
        "    <AssumedRoleUser>\n"
        "      <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>\n"
        "      <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>\n"
        "    </AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
        "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
        "      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764&amp;x</SessionToken>\n"
        "      <Expiration>2019-11-09T13:34:41Z</Expiration>\n"
        "    </Credentials>\n"
        "    <PackedPolicySize>6</PackedPolicySize>\n"
        "  </AssumeRoleResult>\n"
        "  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>\n"
        "</AssumeRoleResponse>\n";
    aws_credentials c;
    aws_error err;
    assert_int_equal(sts_parse_credentials(xml, strlen(xml), &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
    assert_string_equal(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_string_equal(c.session_token, "AQoDYXdzEPT//////////wEXAMPLEtc764&x");
    assert_int_equal(c.expiration, 1573306481);   /* date -u -d 2019-11-09T13:34:41Z +%s */

    const char *no_token = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
                           "<SecretAccessKey>S</SecretAccessKey><Expiration>2019-11-09T13:34:41Z</Expiration>"
                           "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
    assert_int_equal(sts_parse_credentials(no_token, strlen(no_token), &c, &err), AWS_ERR_PARSE);
    assert_int_not_equal(sts_parse_credentials("<a><b>", 6, &c, &err), AWS_OK);
}

/* ---- provider cache and refresh, through the test hook ---- */

typedef struct {
    atomic_int calls;
    int lifetime_s;           /* expiration = now + lifetime_s; 0 = never expires */
    int fail;                 /* answer with an error */
    int delay_ms;
} fake_source;

static int fake_fetch(void *ctx, aws_credentials *out, aws_error *err)
{
    fake_source *f = ctx;
    int n = atomic_fetch_add(&f->calls, 1) + 1;
    if (f->delay_ms)
        usleep((useconds_t)f->delay_ms * 1000);
    if (f->fail)
        return aws_error_set(err, AWS_ERR_NETWORK, "fake source down");
    memset(out, 0, sizeof(*out));
    snprintf(out->access_key_id, sizeof(out->access_key_id), "AKID%d", n);
    snprintf(out->secret_access_key, sizeof(out->secret_access_key), "SECRET%d", n);
    snprintf(out->source, sizeof(out->source), "fake");
    out->expiration = f->lifetime_s ? time(NULL) + f->lifetime_s : 0;
    return AWS_OK;
}

static void test_refresh_margin(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    aws_session *s = new_session(&cfg);
    fake_source fake = { .lifetime_s = 360 };
    credentials_provider_set_source(s->credentials, fake_fetch, &fake);
    aws_credentials c;
    aws_error err;

    /* 6 minutes left, default margin 5 minutes: fetched once, then served from the cache */
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&fake.calls), 1);
    assert_string_equal(c.access_key_id, "AKID1");

    /* a margin larger than the time left, and no spacing between refreshes: every call refreshes */
    credentials_provider_set_refresh_margin(s->credentials, 400);
    credentials_provider_set_min_refresh_interval(s->credentials, 0);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&fake.calls), 2);
    assert_string_equal(c.access_key_id, "AKID2");
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&fake.calls), 3);
    assert_string_equal(c.access_key_id, "AKID3");

    /* with 10 s spacing, the short-lived credentials just fetched are reused instead */
    credentials_provider_set_min_refresh_interval(s->credentials, 10);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&fake.calls), 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&fake.calls), 4);
    assert_string_equal(c.access_key_id, "AKID4");
    credentials_provider_set_min_refresh_interval(s->credentials, 0);

    /* refresh fails while the old credentials are still valid: keep using them */
    fake.fail = 1;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_string_equal(c.access_key_id, "AKID4");
    assert_int_equal(atomic_load(&fake.calls), 5);

    /* expired and the source is down: an error, not stale credentials */
    fake.fail = 0;
    fake.lifetime_s = -10;
    credentials_provider_set_source(s->credentials, fake_fetch, &fake);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);   /* returns already-expired ones */
    fake.fail = 1;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_NETWORK);

    /* never-expiring credentials are fetched once */
    fake_source forever = { .lifetime_s = 0 };
    credentials_provider_set_source(s->credentials, fake_fetch, &forever);
    for (int i = 0; i < 5; i++)
        assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    assert_int_equal(atomic_load(&forever.calls), 1);
    aws_session_free(s);
}

/* With nothing usable cached, a failed chain walk is remembered for min_refresh_interval_s: requests
 * fail fast with the same error instead of each walking the chain again (review finding 23). */
static void test_failure_is_cached(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    aws_session *s = new_session(&cfg);
    fake_source down = { .fail = 1 };
    credentials_provider_set_source(s->credentials, fake_fetch, &down);
    credentials_provider_set_min_refresh_interval(s->credentials, 30);
    aws_credentials c;
    aws_error err;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_NETWORK);
        assert_string_equal(err.message, "fake source down");
    }
    assert_int_equal(atomic_load(&down.calls), 1);
    /* without spacing every call asks again */
    credentials_provider_set_min_refresh_interval(s->credentials, 0);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_NETWORK);
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_ERR_NETWORK);
    assert_int_equal(atomic_load(&down.calls), 3);
    /* a source that recovers is used as soon as the remembered failure is over */
    down.fail = 0;
    assert_int_equal(credentials_get(s->credentials, &c, &err), AWS_OK);
    aws_session_free(s);
}

typedef struct {
    credentials_provider *prov;
    int iterations;
    atomic_int torn;
    atomic_int errors;
} hammer_ctx;

static void *hammer(void *arg)
{
    hammer_ctx *h = arg;
    for (int i = 0; i < h->iterations; i++) {
        aws_credentials c;
        aws_error err;
        if (credentials_get(h->prov, &c, &err) != AWS_OK) {
            atomic_fetch_add(&h->errors, 1);
            continue;
        }
        /* key id and secret must come from the same fetch */
        if (strcmp(c.access_key_id + 4, c.secret_access_key + 6) != 0)
            atomic_fetch_add(&h->torn, 1);
    }
    return NULL;
}

static void test_concurrent_refresh(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    aws_session *s = new_session(&cfg);
    /* always due for refresh but never expired: threads refresh while others read */
    fake_source fake = { .lifetime_s = 100, .delay_ms = 1 };
    credentials_provider_set_source(s->credentials, fake_fetch, &fake);
    credentials_provider_set_refresh_margin(s->credentials, 200);
    credentials_provider_set_min_refresh_interval(s->credentials, 0);
    hammer_ctx h = { .prov = s->credentials, .iterations = 3000 };
    pthread_t threads[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &h), 0);
    for (int i = 0; i < 6; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&h.torn), 0);
    assert_int_equal(atomic_load(&h.errors), 0);
    /* one fetch at a time: far fewer fetches than calls, since waiting threads reuse valid credentials */
    int calls = atomic_load(&fake.calls);
    print_message("%d fetches for %d calls\n", calls, 6 * 3000);
    assert_true(calls >= 2);
    assert_true(calls < 6 * 3000);
    aws_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_from_files_without_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_default_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_profile_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_sts_xml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_margin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_refresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
