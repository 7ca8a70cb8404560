"""The lab drill's S3 proof: with production's key pair, try to remove a version of one of production's restic objects
under Object Lock, plainly and with the governance bypass. Both must be denied and the version must stay.

    s3_lock_proof.py --endpoint-url URL --bucket NAME --prefix PREFIX --credentials FILE

FILE is a JSON object with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (0600; the secrets stay off the command
line). Prints one line of JSON and exits 0 when the proof holds, 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3
from botocore.exceptions import ClientError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--credentials", required=True)
    args = parser.parse_args()
    with open(args.credentials, encoding="utf-8") as handle:
        creds = json.load(handle)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name="us-east-1",
                      aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
    versions = s3.list_object_versions(Bucket=args.bucket, Prefix=args.prefix).get("Versions", [])
    if not versions:
        print(json.dumps({"ok": False, "error": f"no object versions under {args.prefix}"}))
        return 1
    target = versions[0]
    head = s3.head_object(Bucket=args.bucket, Key=target["Key"], VersionId=target["VersionId"])
    attempts = {}
    for name, extra in (("delete version", {}), ("delete version with governance bypass",
                                                 {"BypassGovernanceRetention": True})):
        try:
            s3.delete_object(Bucket=args.bucket, Key=target["Key"], VersionId=target["VersionId"], **extra)
            attempts[name] = "succeeded"
        except ClientError as exc:
            attempts[name] = exc.response.get("Error", {}).get("Code", "error")
    still = [v for v in s3.list_object_versions(Bucket=args.bucket, Prefix=target["Key"]).get("Versions", [])
             if v["VersionId"] == target["VersionId"]]
    ok = bool(still) and all(result != "succeeded" for result in attempts.values())
    print(json.dumps({"ok": ok, "object": target["Key"], "version": target["VersionId"],
                      "lock": head.get("ObjectLockMode"), "retain_until": str(head.get("ObjectLockRetainUntilDate")),
                      "attempts": attempts, "version_still_there": bool(still)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
