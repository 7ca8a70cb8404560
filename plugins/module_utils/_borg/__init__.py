# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BorgBackup 1.x: the only place of the collection that knows borg's command line and repository files.

``cli``         how borg runs: its environment (secrets, inherited variables, relocated repositories), versions and
                their differences, exit codes and ``--log-json`` messages, the command wrapper.
``repo_files``  what a local repository's files say: config, key export text, lock roster.
``locks``       whose lock it is, and whether it may be broken (pure decisions).
``repo``        the ``restoreops.dr.borg_repo`` module: small ``ensure_*`` steps over the above.
"""
