# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print a bucket's Object Lock configuration as JSON (run by the restic role with boto3 available).

Credentials come from the restic environment file given with --env-file (the role's 0600 file: KEY="value" lines,
of which the AWS_* ones are used), else from boto3's own chain (environment, ~/.aws). Never from the command line.
Output:
{"bucket": ..., "object_lock_enabled": bool, "default_retention": {"mode": ..., "days": ..., "years": ...} | null,
 "error": str | null}
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def read_env_file(path: str) -> dict[str, str]:
    """The AWS_* settings of an environment file as the restic role writes it (KEY="value", \\ and \\" escaped)."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if key.startswith("AWS_"):
                values[key] = value
    return values


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--env-file", default=None)
    args = parser.parse_args()
    if args.env_file:
        try:
            os.environ.update(read_env_file(args.env_file))
        except OSError as exc:
            print(json.dumps({"bucket": args.bucket, "object_lock_enabled": False, "default_retention": None,
                              "error": f"cannot read the environment file {args.env_file}: {exc.strerror}"}))
            return 1
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print(json.dumps({"bucket": args.bucket, "object_lock_enabled": False, "default_retention": None,
                          "error": "boto3 is not installed for this Python (restic_s3_python)"}))
        return 1
    client = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint_url or None)
    result = {"bucket": args.bucket, "object_lock_enabled": False, "default_retention": None, "error": None}
    try:
        config = client.get_object_lock_configuration(Bucket=args.bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code != "ObjectLockConfigurationNotFoundError":
            result["error"] = f"{code}: {exc}"
            print(json.dumps(result))
            return 1
        result["error"] = "the bucket has no Object Lock configuration"
        print(json.dumps(result))
        return 0
    except BotoCoreError as exc:
        result["error"] = str(exc)
        print(json.dumps(result))
        return 1
    result["object_lock_enabled"] = config.get("ObjectLockEnabled") == "Enabled"
    retention = config.get("Rule", {}).get("DefaultRetention")
    if retention:
        result["default_retention"] = {"mode": retention.get("Mode"), "days": retention.get("Days"),
                                       "years": retention.get("Years")}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
