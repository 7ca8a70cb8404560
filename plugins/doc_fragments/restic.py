# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module reaches a restic repository (restoreops.dr.restic_repo, restoreops.dr.restic_forget_prune).
    DOCUMENTATION = r"""
options:
  repository:
    description:
      - The restic repository; a local path (or C(local:/path)), C(rest:http://...), C(s3:...), C(sftp:...).
      - Passed as E(RESTIC_REPOSITORY), so credentials inside a REST URL stay off the command line.
    type: str
    required: true
  password:
    description:
      - The repository password. Passed as E(RESTIC_PASSWORD).
      - Exactly one of O(password), O(password_file) and O(password_command) is required.
    type: str
  password_file:
    description:
      - Absolute path of a file whose first line is the password. Passed as E(RESTIC_PASSWORD_FILE).
    type: path
  password_command:
    description:
      - A command that prints the password. Passed as E(RESTIC_PASSWORD_COMMAND); restic runs it.
    type: str
  env:
    description:
      - Extra environment for restic, for example C(AWS_ACCESS_KEY_ID) and C(AWS_SECRET_ACCESS_KEY) for S3.
      - Values are scrubbed from the module's output.
    type: dict
    default: {}
  restic_binary:
    description: Name or absolute path of the restic executable.
    type: str
    default: restic
  cache_dir:
    description: restic's cache directory (E(RESTIC_CACHE_DIR)); restic's default when unset.
    type: path
notes:
  - The repository, the password and backend credentials reach restic through its environment, never through its
    command line.
  - The password variables not chosen, and E(RESTIC_REPOSITORY_FILE), are set empty for restic, so values inherited
    from the environment cannot take precedence.
  - A failure is named from restic 0.17's exit codes (10 no repository, 11 lock failed, 12 wrong password) when
    restic gives one, else from restic's message (restic 0.14 exits with 1 for every fatal error).
requirements:
  - restic 0.14 or newer on the target host.
"""
