#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_archiver_facts
short_description: Report PostgreSQL WAL archiving, replication lag and slot health as facts
version_added: 0.1.0
description:
  - Reads C(pg_stat_archiver), the archive settings, the C(pg_wal/archive_status) backlog, C(pg_stat_replication),
    the standby's receive and replay positions and C(pg_replication_slots), and returns them as
    C(ansible_facts.pg_archiver) together with a verdict (RV(ansible_facts.pg_archiver.healthy)) and one plain
    sentence per violated expectation (RV(ansible_facts.pg_archiver.problems)).
  - Fills the gap left by M(community.postgresql.postgresql_info), which reads nothing from C(pg_stat_archiver) and
    reports no LSN lag.
  - Works with PostgreSQL 12 to 17, on a primary and on a standby (where C(pg_current_wal_lsn()) is not available).
  - Only reads. It runs the same in check mode.
author:
  - restoreops.dr maintainers (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
  - restoreops.dr.attributes.facts
  - restoreops.dr.postgres
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
    details:
      - Nothing is changed, so there is nothing to diff.
  idempotent:
    support: full
  facts:
    support: full
options:
  max_archive_age:
    description:
      - Report a problem when the last successfully archived segment is older than this many seconds.
      - Set it a little above C(archive_timeout) so that an idle but healthy server is not flagged.
      - When unset, the age is reported but not judged.
    type: float
  max_replay_lag:
    description:
      - Report a problem when a standby (seen from the primary, or this server when it is a standby) is more than
        this many seconds behind in replay.
    type: float
  max_replay_lag_bytes:
    description: Report a problem when a standby is more than this many bytes of WAL behind in replay.
    type: int
notes:
  - The login role needs C(pg_monitor) (or superuser); without it the module fails with a message that says so,
    because the replication and archive-status views show partial data to other roles.
  - On a standby, RV(ansible_facts.pg_archiver.replay_lag) is 0 when everything received has been replayed. The age
    of the last replayed transaction is only a lag while WAL is waiting to be replayed; otherwise an idle primary
    would look like a lagging standby.
seealso:
  - module: community.postgresql.postgresql_info
  - name: Continuous archiving and point-in-time recovery
    description: The PostgreSQL manual chapter on WAL archiving.
    link: https://www.postgresql.org/docs/current/continuous-archiving.html
"""

EXAMPLES = r"""
- name: Read the archiver state through the local socket
  become: true
  become_user: postgres
  restoreops.dr.pg_archiver_facts:
    login_unix_socket: /var/run/postgresql
    max_archive_age: 600

- name: Fail when WAL archiving is unhealthy
  ansible.builtin.assert:
    that: ansible_facts.pg_archiver.healthy
    fail_msg: "{{ ansible_facts.pg_archiver.problems | join(' ') }}"

- name: Check a standby's lag over TCP with a monitoring role
  restoreops.dr.pg_archiver_facts:
    login_host: 127.0.0.1
    port: 5433
    login_user: monitor
    login_password: "{{ vault_pg_monitor_password }}"
    ssl_mode: require
    max_replay_lag: 300
    max_replay_lag_bytes: 67108864
  register: standby_state

- name: Show how far behind the standby is
  ansible.builtin.debug:
    msg: "{{ ansible_facts.pg_archiver.replay_lag }} s / {{ ansible_facts.pg_archiver.replay_lag_bytes }} bytes"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to the host's facts.
  returned: success
  type: dict
  contains:
    pg_archiver:
      description: WAL archiving, replication and slot state of the server.
      returned: success
      type: dict
      contains:
        server_version:
          description: The server's version string (C(server_version)).
          type: str
          returned: success
          sample: "15.8 (Debian 15.8-0+deb12u1)"
        server_version_num:
          description: The server's version as a number.
          type: int
          returned: success
          sample: 150008
        in_recovery:
          description: Whether the server is a standby (or recovering).
          type: bool
          returned: success
        archive_mode:
          description: C(archive_mode) (V(off), V(on) or V(always)).
          type: str
          returned: success
          sample: "on"
        archive_command:
          description: C(archive_command).
          type: str
          returned: success
          sample: /usr/local/bin/restoreops-wal-archive %p %f
        archive_library:
          description: C(archive_library); V(null) before PostgreSQL 15.
          type: str
          returned: success
        archive_timeout:
          description: C(archive_timeout) in seconds (0 is off).
          type: int
          returned: success
          sample: 60
        wal_level:
          description: C(wal_level).
          type: str
          returned: success
          sample: replica
        wal_keep_size:
          description: WAL kept for standbys in MB (C(wal_keep_size), or C(wal_keep_segments) times the segment size
            on PostgreSQL 12).
          type: int
          returned: success
        archived_count:
          description: Segments archived since the statistics were reset.
          type: int
          returned: success
        last_archived_wal:
          description: Name of the last segment archived successfully.
          type: str
          returned: success
          sample: "000000010000000000000004"
        last_archived_time:
          description: When it was archived (ISO 8601).
          type: str
          returned: success
        last_archived_age:
          description: Seconds since the last successful archive; V(null) when nothing was archived.
          type: float
          returned: success
        failed_count:
          description: Failed archive attempts since the statistics were reset.
          type: int
          returned: success
        last_failed_wal:
          description: Segment of the last failed attempt.
          type: str
          returned: success
        last_failed_time:
          description: When the last attempt failed (ISO 8601).
          type: str
          returned: success
        failing:
          description: The last failure is newer than the last success (archiving is stuck right now).
          type: bool
          returned: success
        stats_reset:
          description: When C(pg_stat_archiver) was last reset (ISO 8601).
          type: str
          returned: success
        stats_age:
          description: Seconds since C(pg_stat_archiver) was last reset.
          type: float
          returned: success
        ready_wal_count:
          description: Segments waiting to be archived (C(.ready) files in C(pg_wal/archive_status)); V(null) when
            not readable.
          type: int
          returned: success
        replicas:
          description: One entry per connected standby (from C(pg_stat_replication)).
          type: list
          elements: dict
          returned: success
          contains:
            application_name:
              description: The standby's C(application_name).
              type: str
            state:
              description: WAL sender state (for example V(streaming)).
              type: str
            sent_lsn:
              description: Last WAL position sent.
              type: str
            replay_lsn:
              description: Last WAL position the standby replayed.
              type: str
            replay_lag_bytes:
              description: Bytes between this server's current WAL position and the standby's replay position.
              type: int
            replay_lag:
              description: Seconds of replay lag as measured by the primary; 0 when caught up.
              type: float
        receive_lsn:
          description: On a standby, the last WAL position received; V(null) on a primary.
          type: str
          returned: success
        replay_lsn:
          description: On a standby, the last WAL position replayed; V(null) on a primary.
          type: str
          returned: success
        replay_lag_bytes:
          description: On a standby, bytes received but not replayed yet; V(null) on a primary.
          type: int
          returned: success
        replay_lag:
          description:
            - On a standby, seconds behind in replay; V(null) on a primary.
            - 0 when the receive and replay positions are equal, so that an idle primary does not look like lag.
          type: float
          returned: success
        last_replay_time:
          description: On a standby, the commit time of the last replayed transaction (ISO 8601).
          type: str
          returned: success
        slots:
          description: One entry per replication slot.
          type: list
          elements: dict
          returned: success
          contains:
            name:
              description: Slot name.
              type: str
            slot_type:
              description: V(physical) or V(logical).
              type: str
            active:
              description: Whether a consumer is connected.
              type: bool
            wal_status:
              description: C(wal_status) (PostgreSQL 13 and newer), for example V(reserved) or V(lost).
              type: str
            retained_bytes:
              description: Bytes of WAL the slot holds back in C(pg_wal).
              type: int
        problems:
          description: One plain sentence per violated expectation (archiving off, failing, last archive too old,
            lag over a threshold, an inactive slot retaining WAL).
          type: list
          elements: str
          returned: success
          sample:
            - "WAL archiving is failing: segment 000000010000000000000003 failed to archive at ..."
        problems_by_area:
          description:
            - The same sentences as RV(ansible_facts.pg_archiver.problems), grouped by what they are about -
              C(archiving) (archive settings, failures, the age of the last archived segment), C(replication)
              (replay lag of this standby or of the standbys) and C(slots) (replication slots). Each key is always
              present, with an empty list when nothing is wrong there.
          type: dict
          returned: success
          version_added: 0.3.0
          sample: {"archiving": [], "replication": ["Standby node2 is 420 s behind in replay (max_replay_lag is
                   300 s)."], "slots": []}
        healthy:
          description: V(true) when RV(ansible_facts.pg_archiver.problems) is empty.
          type: bool
          returned: success
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils import _postgres  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            login_host=dict(type="str", aliases=["host", "login_hostname"]),
            login_unix_socket=dict(type="str", aliases=["unix_socket"]),
            port=dict(type="int", default=5432, aliases=["login_port"]),
            login_user=dict(type="str", default="postgres", aliases=["login"]),
            login_password=dict(type="str", no_log=True, aliases=["password"]),
            login_db=dict(type="str", default="postgres", aliases=["db", "database"]),
            connect_timeout=dict(type="int", default=10),
            ssl_mode=dict(type="str", default="prefer", choices=_postgres.SSL_MODES),
            max_archive_age=dict(type="float"),
            max_replay_lag=dict(type="float"),
            max_replay_lag_bytes=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    if _postgres.psycopg is None:
        module.fail_json(msg=missing_required_lib("psycopg (version 3)"), exception=_postgres.PSYCOPG_IMPORT_ERROR)
    run_module(module, _postgres.main)


if __name__ == "__main__":
    main()
