/* Test and diagnostic tool: resolves AWS credentials the way the daemon does and prints which source
 * gave them and the access key id, never the secret or the session token.
 *
 *   credentials_check [--profile P] [--credentials-file F] [--config-file F] [--region R]
 *                     [--sts-endpoint URL] [--allow-http] [--refresh-margin SECONDS]
 *                     [--min-refresh-interval SECONDS] [--repeat N] [--interval SECONDS]
 *                     [--caller-identity]
 *
 * Prints per call: "source=<source> access_key_id=<id> session_token=<yes|no> expires_in=<s|never>",
 * then "region=<region>" once, and with --caller-identity "arn=<ARN>" from STS GetCallerIdentity signed
 * with those credentials (proof that they work). Exit status 0 when every call succeeded, 1 with the error on stderr
 * (its service code, e.g. "code=SignatureDoesNotMatch", so tests can match it), 2 for bad usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws_session.h"
#include "credentials.h"
#include "credentials_sources.h"
#include "secure_mem.h"
#include "sts.h"

static void usage(void)
{
    fprintf(stderr, "usage: credentials_check [--profile P] [--credentials-file F] [--config-file F] "
                    "[--region R] [--sts-endpoint URL] [--allow-http] [--refresh-margin S] "
                    "[--min-refresh-interval S] [--repeat N] [--interval S] [--caller-identity]\n");
}

static int copy_option(char *dst, size_t cap, const char *value)
{
    if (strlen(value) >= cap) {
        fprintf(stderr, "credentials_check: option value too long\n");
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "profile", required_argument, NULL, 'p' },
        { "credentials-file", required_argument, NULL, 'c' },
        { "config-file", required_argument, NULL, 'f' },
        { "region", required_argument, NULL, 'r' },
        { "sts-endpoint", required_argument, NULL, 's' },
        { "allow-http", no_argument, NULL, 'h' },
        { "refresh-margin", required_argument, NULL, 'm' },
        { "min-refresh-interval", required_argument, NULL, 'M' },
        { "repeat", required_argument, NULL, 'n' },
        { "caller-identity", no_argument, NULL, 'I' },
        { "interval", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    aws_config cfg;
    aws_config_defaults(&cfg);
    int refresh_margin = -1, min_refresh_interval = -1, repeat = 1, caller_identity = 0;
    double interval = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case 'p': rc = copy_option(cfg.profile, sizeof(cfg.profile), optarg); break;
        case 'c': rc = copy_option(cfg.credentials_file, sizeof(cfg.credentials_file), optarg); break;
        case 'f': rc = copy_option(cfg.config_file, sizeof(cfg.config_file), optarg); break;
        case 'r': rc = copy_option(cfg.region, sizeof(cfg.region), optarg); break;
        case 's': rc = copy_option(cfg.sts_endpoint, sizeof(cfg.sts_endpoint), optarg); break;
        case 'h': cfg.allow_http = 1; break;
        case 'm': refresh_margin = atoi(optarg); break;
        case 'M': min_refresh_interval = atoi(optarg); break;
        case 'n': repeat = atoi(optarg); break;
        case 'I': caller_identity = 1; break;
        case 'i': interval = atof(optarg); break;
        default: usage(); return 2;
        }
        if (rc)
            return 2;
    }
    if (optind != argc || repeat < 1) {
        usage();
        return 2;
    }
    /* Tests want a failure quickly, not after minutes of retries. */
    cfg.max_attempts = 3;
    cfg.total_timeout_ms = 20000;

    aws_error err;
    char text[512];
    aws_session *session = aws_session_new(&cfg, &err);
    if (!session) {
        fprintf(stderr, "credentials_check: %s code=%s\n", aws_error_format(&err, text, sizeof(text)), err.code);
        return 1;
    }
    if (refresh_margin >= 0)
        credentials_provider_set_refresh_margin(session->credentials, refresh_margin);
    if (min_refresh_interval >= 0)
        credentials_provider_set_min_refresh_interval(session->credentials, min_refresh_interval);

    int status = 0;
    for (int i = 0; i < repeat && status == 0; i++) {
        if (i > 0 && interval > 0)
            usleep((useconds_t)(interval * 1e6));
        aws_credentials creds;
        if (credentials_get(session->credentials, &creds, &err) != AWS_OK) {
            fprintf(stderr, "credentials_check: %s code=%s\n", aws_error_format(&err, text, sizeof(text)), err.code);
            status = 1;
            break;
        }
        char expires[32];
        if (creds.expiration)
            snprintf(expires, sizeof(expires), "%lld", (long long)(creds.expiration - time(NULL)));
        else
            snprintf(expires, sizeof(expires), "never");
        printf("source=%s access_key_id=%s session_token=%s expires_in=%s\n", creds.source, creds.access_key_id,
               creds.session_token[0] ? "yes" : "no", expires);
        fflush(stdout);
        secure_wipe(&creds, sizeof(creds));
    }
    if (status == 0)
        printf("region=%s\n", session->config.region);
    if (status == 0 && caller_identity) {
        char arn[512];
        if (sts_get_caller_identity(session, NULL, arn, sizeof(arn), &err) != AWS_OK) {
            fprintf(stderr, "credentials_check: GetCallerIdentity: %s code=%s\n",
                    aws_error_format(&err, text, sizeof(text)), err.code);
            status = 1;
        } else {
            printf("arn=%s\n", arn);
        }
    }
    aws_session_free(session);
    return status;
}
