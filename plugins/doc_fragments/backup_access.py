# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module opens a borg or restic repository to read restore points (restoreops.dr.backup_restore,
    # restoreops.dr.backup_known_good); the argument spec is _restore.ACCESS_OPTIONS.
    DOCUMENTATION = r"""
options:
  password:
    description: The repository password or passphrase.
    type: str
    aliases: [passphrase]
  password_file:
    description: File whose first line is the password.
    type: path
    aliases: [passphrase_file]
  password_command:
    description: Command that prints the password (run by the tool itself).
    type: str
    aliases: [passcommand]
  key_file:
    description: borg keyfile-mode key (for example the escrowed copy), given to borg as C(BORG_KEY_FILE).
    type: path
  env:
    description: Extra environment for the tool, such as backend credentials (C(AWS_ACCESS_KEY_ID)).
    type: dict
    default: {}
  cache_dir:
    description: restic cache directory.
    type: path
  binary:
    description: Path or name of the borg/restic executable.
    type: str
"""
