"""Runs under the moto venv's Python (it has boto3); the S3 tests call it to set up a server (moto or SeaweedFS)
and to look at what segscale left there, independently of segscale's own S3 client.
  setup ENDPOINT BUCKET...         -> prints "KEY SECRET" of a new IAM user allowed everything, creates the BUCKETs
  buckets ENDPOINT KEY SECRET BUCKET... -> creates the BUCKETs (a server with static credentials: SeaweedFS)
  session ENDPOINT KEY SECRET      -> prints "KEY SECRET TOKEN" of temporary STS credentials
  upload ENDPOINT KEY SECRET BUCKET PREFIX DIR
  put-many ENDPOINT KEY SECRET BUCKET PREFIX N
  head ENDPOINT KEY SECRET BUCKET KEY   -> prints the ETag
  uploads ENDPOINT KEY SECRET BUCKET PREFIX -> prints the number of unfinished multipart uploads
"""
import json
import sys
from pathlib import Path

import boto3


def client(service, ep, key="x", secret="x", token=None):
    return boto3.client(service, endpoint_url=ep, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token)


def main(cmd, ep, *a):
    if cmd == "setup":
        iam = client("iam", ep)
        iam.create_user(UserName="segscale")
        iam.put_user_policy(UserName="segscale", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="segscale")["AccessKey"]
        for b in a:
            client("s3", ep, k["AccessKeyId"], k["SecretAccessKey"]).create_bucket(Bucket=b)
        print(k["AccessKeyId"], k["SecretAccessKey"])
        return
    s3 = client("s3", ep, a[0], a[1])
    if cmd == "buckets":
        for b in a[2:]:
            s3.create_bucket(Bucket=b)
    elif cmd == "session":  # moto's authentication knows assumed-role credentials (not GetSessionToken's)
        iam = client("iam", ep, a[0], a[1])
        try:
            arn = iam.get_role(RoleName="segscale-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(RoleName="segscale-role", AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
            iam.put_role_policy(RoleName="segscale-role", PolicyName="all", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        c = client("sts", ep, a[0], a[1]).assume_role(RoleArn=arn, RoleSessionName="segscale-test")["Credentials"]
        print(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    elif cmd == "upload":
        bucket, prefix, d = a[2], a[3], Path(a[4])
        for f in sorted(d.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(d).as_posix()}".lstrip("/"))
    elif cmd == "put-many":
        bucket, prefix, n = a[2], a[3], int(a[4])
        for i in range(n):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/obj-{i:05d}".lstrip("/"), Body=str(i).encode())
    elif cmd == "head":
        print(s3.head_object(Bucket=a[2], Key=a[3])["ETag"])
    elif cmd == "uploads":
        print(len(s3.list_multipart_uploads(Bucket=a[2], Prefix=a[3]).get("Uploads", [])))


if __name__ == "__main__":
    main(*sys.argv[1:])
