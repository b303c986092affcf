#!/usr/bin/env python3
"""Provision a fresh moto server for one test run and print the shell exports that describe it.

Called by tests/lib/with-stack. The server is started with INITIAL_NO_AUTH_ACTION_COUNT=3, so exactly
the first three actions (the IAM calls below that create a user, its allow-all policy and its access
key) are accepted without a signature check. Every later request, including the bucket and KMS setup
here, is signed with the new IAM user's key and verified by moto, so a SigV4 bug in s3csefs fails tests.
"""
import json
import shlex
import sys

import boto3
from botocore.config import Config

UNAUTHENTICATED_SETUP_ACTIONS = 3  # must match INITIAL_NO_AUTH_ACTION_COUNT in with-stack
BUCKET = "s3csefs-test"
KEY_ALIAS = "alias/s3csefs-test"
REGION = "us-east-1"

ALLOW_ALL_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
})


def client(service, endpoint, key_id, secret):
    # No retries: a failed setup call must not be repeated, since every attempt uses up one of the
    # unauthenticated actions.
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: stack_setup.py ENDPOINT_URL")
    endpoint = sys.argv[1]

    # The only three requests moto lets through unchecked.
    iam = client("iam", endpoint, "bootstrap", "bootstrap")
    iam.create_user(UserName="s3csefs-test")
    iam.put_user_policy(UserName="s3csefs-test", PolicyName="allow-all",
                        PolicyDocument=ALLOW_ALL_POLICY)
    key = iam.create_access_key(UserName="s3csefs-test")["AccessKey"]
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]

    # From here on moto verifies every signature.
    s3 = client("s3", endpoint, key_id, secret)
    s3.create_bucket(Bucket=BUCKET)
    kms = client("kms", endpoint, key_id, secret)
    key_arn = kms.create_key(Description="s3csefs test key", KeySpec="SYMMETRIC_DEFAULT",
                             KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_arn)

    exports = {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "S3CSEFS_TEST_BUCKET": BUCKET,
        "S3CSEFS_TEST_KEY_ARN": key_arn,
        "S3CSEFS_TEST_KEY_ALIAS": KEY_ALIAS,
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
