# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic: the only place of the collection that knows restic's command line and repository files.

``cli``         how restic runs: its environment (repository and secrets never on argv, inherited variables
                overridden), versions and their differences (exit codes, restore's JSON and ``--overwrite``),
                failures named, the command wrapper.
``repo_files``  what a local repository's files say (config present, lock files, size), read without restic.
``locks``       which lock is stale (restic's own rule), pure.
``retention``   the ``restoreops.dr.restic_forget_prune`` module.
``repo``        the ``restoreops.dr.restic_repo`` module: small ``ensure_*`` steps.
"""
