/* Web identity credentials: an OIDC token file (EKS IRSA, GitHub Actions, ...) exchanged at STS
 * AssumeRoleWithWebIdentity. Configured by AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or by a profile's
 * web_identity_token_file + role_arn. The token file is re-read at every refresh (it is rotated). */
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "credentials_sources.h"
#include "sts.h"

#define MAX_TOKEN_BYTES 65536

int credentials_web_identity_from_file(aws_session *session, const char *role_arn, const char *session_name,
                                       const char *token_file, aws_credentials *out, aws_error *err)
{
    FILE *f = fopen(token_file, "rb");
    if (!f)
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read web identity token file %s: %s", token_file,
                             strerror(errno));
    char *token = malloc(MAX_TOKEN_BYTES + 1);
    if (!token) {
        fclose(f);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory reading the web identity token");
    }
    size_t len = fread(token, 1, MAX_TOKEN_BYTES + 1, f);
    int read_failed = ferror(f);
    fclose(f);
    int rc;
    if (read_failed || len > MAX_TOKEN_BYTES) {
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "web identity token file %s is unreadable or too large",
                           token_file);
    } else {
        while (len > 0 && isspace((unsigned char)token[len - 1]))
            len--;
        token[len] = '\0';
        if (len == 0)
            rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "web identity token file %s is empty", token_file);
        else
            rc = sts_assume_role_with_web_identity(session, role_arn, session_name, token, out, err);
    }
    OPENSSL_cleanse(token, MAX_TOKEN_BYTES + 1);
    free(token);
    return rc;
}

int credentials_from_web_identity_env(aws_session *session, aws_credentials *out, aws_error *err)
{
    const char *token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role_arn = getenv("AWS_ROLE_ARN");
    if (!token_file || !*token_file || !role_arn || !*role_arn)
        return CREDENTIALS_NOT_CONFIGURED;
    return credentials_web_identity_from_file(session, role_arn, getenv("AWS_ROLE_SESSION_NAME"), token_file,
                                              out, err);
}
