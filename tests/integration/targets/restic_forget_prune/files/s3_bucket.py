# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create a bucket on the local moto server, optionally with Object Lock, or count an object's versions.

Usage: s3_bucket.py ENDPOINT create BUCKET [locked]
       s3_bucket.py ENDPOINT versions BUCKET PREFIX      (prints JSON: live objects and stored versions)
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (dummy values for moto).
"""

from __future__ import annotations

import json
import sys

import boto3


def main() -> int:
    endpoint, action, bucket = sys.argv[1:4]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    if action == "create":
        locked = len(sys.argv) > 4 and sys.argv[4] == "locked"
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)
        if locked:
            s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            })
        print(json.dumps({"bucket": bucket, "locked": locked}))
        return 0
    prefix = sys.argv[4]
    live = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    print(json.dumps({"live": live, "versions": len(versions.get("Versions", [])),
                      "delete_markers": len(versions.get("DeleteMarkers", []))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
