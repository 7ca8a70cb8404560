from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "restic" / "files" / "s3_object_lock.py"


def load():
    spec = importlib.util.spec_from_file_location("s3_object_lock", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_file_gives_the_aws_settings_only(tmp_path):
    # The file as roles/restic/templates/restic.env.j2 writes it: values quoted, \ and " escaped.
    env = tmp_path / "main.env"
    env.write_text(
        "# Ansible managed\n"
        'RESTIC_REPOSITORY="s3:http://127.0.0.24:29024/bucket/host"\n'
        'RESTIC_PASSWORD_FILE="/etc/restic/main.pass"\n'
        'AWS_ACCESS_KEY_ID="AKIAEXAMPLE"\n'
        'AWS_SECRET_ACCESS_KEY="a\\\\b\\"c"\n'
        "\n"
    )
    assert load().read_env_file(str(env)) == {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": 'a\\b"c'}
